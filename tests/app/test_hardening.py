"""Issue 11, items 1-3, in process: no refusal waits and a known MAC is refused exactly like
an unknown one; stale leases refuse at once; dnsmasq's own lease file covers a phone that
asks before the hook has recorded its lease; 405, 413 and a fast 503 as the README says."""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from phoneprov.config import Config
from phoneprov.core.layout import device_token
from phoneprov.secret import load_secret
from phoneprov.state.db import Lease, State
from phoneprov.web import leases
from phoneprov.web.app import create_app, create_wsgi
from phoneprov.web.routes import provisioning

from .conftest import D200
from .test_routes import PHONE_IP, client, lease

PC = "02005E100001"
UNKNOWN = "00095200FFFF"
PROBER = "10.0.0.66"
SAMPLES = 50
URL = f"/prov/D200/{D200}/device.xml"


def call(app: Any, path: str, ip: str, query: str = "") -> tuple[str, list[Any], bytes, float]:
    """One GET through the WSGI app `phoneprov serve` runs; (status, headers, body, seconds)."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query}
    got: list[Any] = []
    started = time.perf_counter()
    body = b"".join(app(environ | {"REMOTE_ADDR": ip}, lambda s, h: got.extend([s, h])))
    return got[0], got[1], body, time.perf_counter() - started


def write_leasefile(config: Config, *rows: tuple[str, str], expires: float | None = None) -> None:
    """dnsmasq's lease file as it writes it: `expiry mac ip hostname client-id`."""
    expiry = int(time.time() + 3600 if expires is None else expires)
    lines = [f"{expiry} {mac[:2]}:{mac[2:4]}:{mac[4:6]}:{mac[6:8]}:{mac[8:10]}:{mac[10:]}"
             f" {ip} * *" for mac, ip in rows]  # fmt: skip
    assert config.dhcp.leasefile is not None
    config.dhcp.leasefile.write_text("\n".join(lines) + "\n")


# item 1: the wait was a denial of service and an oracle --------------------------------------


@pytest.mark.parametrize("holder", [None, "10.0.0.99"], ids=["no lease", "leased elsewhere"])
def test_known_and_unknown_macs_are_refused_alike_in_bytes_and_time(
    site: Callable[..., Config], holder: str | None
) -> None:
    config = site("lease", extra="refused_per_minute = 0\n")
    if holder:
        lease(config, ip=holder)
    wsgi = create_wsgi(provisioning(create_app(config)))
    times: dict[str, list[float]] = {D200: [], UNKNOWN: []}
    answers = set()
    for _ in range(SAMPLES):  # interleaved: drift hits both alike
        for mac in (D200, UNKNOWN):
            status, headers, body, took = call(wsgi, "/prov.py", PROBER, f"mac={mac}")
            answers.add((status, tuple(headers), body))
            times[mac].append(took)
    assert answers == {
        ("403 Forbidden", (("Content-Type", "text/plain; charset=utf-8"),
                           ("Content-Length", "10")), b"forbidden\n"),
    }  # fmt: skip
    difference = abs(statistics.median(times[D200]) - statistics.median(times[UNKNOWN]))
    assert difference < 0.005, f"median {difference * 1000:.1f} ms apart"


def test_token_mode_refuses_known_and_unknown_macs_alike(site: Callable[..., Config]) -> None:
    config = site("token", extra="refused_per_minute = 0\n")
    wsgi = create_wsgi(provisioning(create_app(config)))
    wrong = device_token(load_secret(config.security.secret_file), "000952000077")
    times: dict[str, list[float]] = {D200: [], UNKNOWN: []}
    for _ in range(SAMPLES):
        for mac in (D200, UNKNOWN):
            status, _, body, took = call(wsgi, f"/t/{wrong}/prov.py", PROBER, f"mac={mac}")
            assert (status, body) == ("403 Forbidden", b"forbidden\n")
            times[mac].append(took)
    assert abs(statistics.median(times[D200]) - statistics.median(times[UNKNOWN])) < 0.005


def test_a_phone_ahead_of_the_hook_is_served_from_dnsmasqs_lease_file(
    site: Callable[..., Config],
) -> None:
    """dnsmasq writes its lease file at the ACK, before it runs the hook: nothing to wait for."""
    config = site("lease")
    app = create_app(config)
    assert client(app).get(URL).status_code == 403  # no lease anywhere yet
    write_leasefile(config, (D200, PHONE_IP))  # the ACK; the hook has not run
    assert client(app).get(URL).status_code == 200
    assert client(app, "10.0.0.51").get(URL).status_code == 403
    write_leasefile(config, (D200, PHONE_IP), expires=time.time() - 1)
    assert client(app).get(URL).status_code == 403  # an expired line counts for nothing


def test_the_newer_of_lease_file_and_database_decides(site: Callable[..., Config]) -> None:
    config = site("lease")
    app = create_app(config)
    assert config.dhcp.leasefile is not None
    write_leasefile(config, (D200, PHONE_IP))
    past = time.time() - 100
    os.utime(config.dhcp.leasefile, (past, past))  # a stale file (say, --leasefile-ro)
    lease(config, mac=PC)  # the hook has since recorded a PC on that address
    assert client(app).get(URL).status_code == 403
    write_leasefile(config, (D200, PHONE_IP))  # dnsmasq just gave it back to the phone
    assert client(app).get(URL).status_code == 200
    lease(config)  # the hook catches up
    write_leasefile(config)  # then dnsmasq takes it away (a release)
    assert client(app).get(URL).status_code == 200  # an empty reading alone proves nothing
    with State(config.state) as state:  # the hook's `del` does
        state.release_lease(D200, PHONE_IP, time.time() + 1)
    assert client(app).get(URL).status_code == 403


def test_a_lease_file_read_while_dnsmasq_rewrites_it_takes_no_lease_away(
    site: Callable[..., Config],
) -> None:
    """dnsmasq rewrites its lease file in place: a reading may find it empty or cut short.
    A boot storm of 200 phones showed up to 103 requests refused mid-chain that way, for
    phones the file had named a moment before while the hook (one event at a time) had not
    recorded them yet."""
    config = site("lease")
    lease(config)  # the hook recorded the phone's lease
    app = create_app(config)
    assert client(app).get(URL).status_code == 200
    write_leasefile(config)  # newer than the hook's record, and caught empty
    assert client(app).get(URL).status_code == 200
    d100, d100_ip, d100_url = "000952000030", "10.0.0.77", "/prov/D100/000952000030/device.xml"
    write_leasefile(config, (D200, PHONE_IP), (d100, d100_ip))  # the D100 ahead of the hook
    assert client(app, d100_ip).get(d100_url).status_code == 200
    write_leasefile(config, (D200, PHONE_IP))  # a reading cut short after the first line
    assert client(app, d100_ip).get(d100_url).status_code == 200
    write_leasefile(config)  # and one caught empty
    assert client(app, d100_ip).get(d100_url).status_code == 200
    assert client(app, PROBER).get(d100_url).status_code == 403


# item 2: stale leases -------------------------------------------------------------------------


def test_an_expired_lease_refuses_at_once(site: Callable[..., Config]) -> None:
    config = site("lease")
    with State(config.state) as state:
        state.record_lease(Lease(D200, PHONE_IP, expires=int(time.time()) - 1), time.time())
    assert client(create_app(config)).get(URL).status_code == 403


def test_a_new_lease_on_the_address_ends_the_old_one_at_once(
    site: Callable[..., Config],
) -> None:
    """The phone's `del` was missed; a PC got its address: the PC gets nothing of the phone's."""
    config = site("lease")
    app = create_app(config)
    lease(config)
    assert client(app).get(URL).status_code == 200
    lease(config, mac=PC)
    assert client(app).get(URL).status_code == 403


def test_after_a_move_the_old_address_is_refused_at_once(site: Callable[..., Config]) -> None:
    config = site("lease")
    app = create_app(config)
    lease(config)
    assert client(app).get(URL).status_code == 200
    lease(config, ip="10.0.0.60")  # nothing is remembered from the answer a moment ago
    assert client(app).get(URL).status_code == 403
    assert client(app, "10.0.0.60").get(URL).status_code == 200


# item 3: what the README promises -------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["dispatch", "flask"])
def any_app(site: Callable[..., Config], request: pytest.FixtureRequest) -> Flask:
    return create_app(site("open"), fast_path=request.param)


def test_options_is_405_and_says_what_is_allowed(any_app: Flask) -> None:
    response = client(any_app).options(URL)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.content_type.startswith("text/plain") and b"<" not in response.data


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"])
def test_every_other_method_is_405(any_app: Flask, method: str) -> None:
    for data in (None, b"x"):
        response = client(any_app).open(URL, method=method, data=data)
        assert response.status_code == 405, (method, data)
        assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_body_is_413(any_app: Flask, method: str) -> None:
    c = client(any_app)
    assert c.open(URL, method=method, data=b"x").status_code == 413
    chunked = c.open(URL, method=method, headers={"Transfer-Encoding": "chunked"}, data=b"x")
    assert chunked.status_code == 413
    assert c.open(URL, method=method).status_code == 200  # and no body is fine


def corrupt(config: Config) -> None:
    for suffix in ("-wal", "-shm"):
        config.state.with_name(config.state.name + suffix).unlink(missing_ok=True)
    config.state.write_bytes(b"this is not an SQLite database\n" * 100)


def test_a_corrupt_state_database_is_a_fast_503_and_one_log_line(
    site: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    config = site("lease")
    app = create_app(config)
    corrupt(config)
    caplog.clear()
    started = time.monotonic()
    for _ in range(20):
        response = client(app).get(URL)
        assert (response.status_code, response.data) == (503, b"service unavailable\n")
        assert response.content_type == "text/plain; charset=utf-8"
    assert time.monotonic() - started < 2.0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(config.state) in errors[0], errors


def test_an_unopenable_state_database_is_a_503(site: Callable[..., Config]) -> None:
    config = site("lease")
    app = create_app(config)
    config.state.unlink()
    config.state.mkdir()  # a directory where the database should be
    assert client(app).get(URL).status_code == 503


def test_open_mode_serves_on_through_a_corrupt_database(
    site: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    """Only lease mode needs the database to decide; the fetch log says once it is lost."""
    config = site("open")
    app = create_app(config)
    corrupt(config)
    caplog.clear()
    for _ in range(5):
        assert client(app).get(URL).status_code == 200
    started = time.monotonic()
    provisioning(app).close()  # drains, does not hang
    assert time.monotonic() - started < 5.0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(config.state) in errors[0], errors


def test_a_lease_written_a_moment_after_the_request_is_found_by_one_recheck(
    site: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone may ask before dnsmasq has written its lease (a boot storm of 200 showed 2):
    nobody holds the address and the file changed within a second, so it is read again."""
    config = site("lease")
    app = create_app(config)
    write_leasefile(config)  # dnsmasq is busy with other phones' leases
    later = threading.Timer(0.03, write_leasefile, (config, (D200, PHONE_IP)))
    later.start()
    try:
        assert client(app).get(URL).status_code == 200
    finally:
        later.join()
    assert config.dhcp.leasefile is not None
    past = time.time() - 5
    os.utime(config.dhcp.leasefile, (past, past))  # quiet for a while: no recheck, no wait
    waits: list[float] = []
    monkeypatch.setattr(leases.time, "sleep", waits.append)
    assert client(app, PROBER).get(URL).status_code == 403
    assert waits == []
    write_leasefile(config, (D200, PHONE_IP))  # just written: the stranger waits once
    assert client(app, PROBER).get(URL).status_code == 403
    assert waits == [leases.RECHECK_AFTER_S]
