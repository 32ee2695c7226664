"""The admin JSON API through Flask's test client, on a real site: the phones' endpoint (its
own Flask app) writes the fetch log, leases and discovered phones are recorded as the hook
records them, resync sends real check-sync NOTIFYs over UDP on loopback."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from admin_sample import D100, D200, D400, STRANGER, admin_config, logged_in, record
from phoneprov.admin.app import create_admin_app
from phoneprov.config import Config
from phoneprov.core.reference import parse_reference, resolve_reference
from phoneprov.state.db import Discovered, Lease, State
from phoneprov.web.app import create_app
from phoneprov.web.routes import EXTENSION

IP = "10.0.0.5"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return admin_config(tmp_path)


@pytest.fixture
def api(config: Config) -> tuple[FlaskClient, str]:
    return logged_in(create_admin_app(config))


def lease(mac: str, ip: str = IP, now: float | None = None) -> Lease:
    now = time.time() if now is None else now
    return Lease(mac, ip, expires=int(now) + 3600, first_seen=now, last_seen=now)


def boot(config: Config, mac: str, ip: str = IP, files: bool = True) -> list[int]:
    """The phone fetches its chain from the phones' endpoint (a real app): statuses."""
    phones = create_app(config)
    client = phones.test_client()
    statuses = []
    try:
        entry = f"http://10.0.0.1:8080/prov.py?mac={mac}"
        response = client.get(f"/prov.py?mac={mac}", environ_base={"REMOTE_ADDR": ip})
        statuses.append(response.status_code)
        if response.status_code == 200 and files:
            for ref in parse_reference(response.data):
                url = urlsplit(resolve_reference(entry, ref))
                got = client.get(url.path, environ_base={"REMOTE_ADDR": ip})
                statuses.append(got.status_code)
    finally:
        phones.extensions[EXTENSION].close()  # the fetch log is written
    return statuses


def phone_row(client: FlaskClient, mac: str) -> dict[str, Any]:
    rows = client.get("/api/v1/phones").get_json()["phones"]
    return next(r for r in rows if r["mac"] == mac)


def test_a_phone_goes_from_never_fetched_to_provisioned(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    client, _ = api
    row = phone_row(client, "00:09:52:00:00:0e")
    assert row["state"] == "never fetched" and row["lease"] is None
    assert row["source"] == "inventory" and row["model"] == "D200"
    assert row["name"] == "Front desk" and row["profile"] == "default"
    record(config, leases=[lease(D200)])
    assert boot(config, D200) == [200, 200, 200, 200, 200]
    row = phone_row(client, "00:09:52:00:00:0e")
    assert row["state"] == "provisioned", row
    assert row["lease"]["address"] == IP and row["lease"]["expires"] > time.time()
    assert row["last_fetch"]["path"] == f"/prov/D200/{D200}/device.xml"
    assert row["last_fetch"]["status"] == 200 and row["last_fetch"]["reason"] is None


def test_the_appliances_own_fetches_are_not_the_phones(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    """`doctor` fetches every phone's files from the appliance's address (server.url's):
    logged under the phone's MAC, they say nothing of the phone."""
    client, _ = api
    record(config, leases=[lease(D200)])
    assert boot(config, D200, ip="10.0.0.1") == [403]  # not the lease's address: refused
    row = phone_row(client, "00:09:52:00:00:0e")
    assert (row["state"], row["last_fetch"]) == ("never fetched", None)
    detail = client.get("/api/v1/phones/00:09:52:00:00:0e").get_json()
    assert {f["ip"] for f in detail["fetches"]} == {"10.0.0.1"}  # the history shows them


def test_pending_until_every_file_is_fetched(config: Config, api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    record(config, leases=[lease(D200)])
    boot(config, D200, files=False)
    row = phone_row(client, "00:09:52:00:00:0e")
    assert row["state"] == "pending"
    assert row["state_detail"] == "not fetched yet: common.xml, model.xml, office.xml, device.xml"


def test_pending_after_a_change_recorded_by_apply_resync(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    client, _ = api
    record(config, leases=[lease(D200)])
    boot(config, D200)
    with State(config.state) as state:
        state.record_rendered({D200: "new digest"}, time.time() + 1)
    row = phone_row(client, "00:09:52:00:00:0e")
    assert row["state"] == "pending"
    assert row["state_detail"].startswith("changed since it last fetched: the entry")


def test_refused_with_the_reason(config: Config, api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    record(config, leases=[lease(D200, "10.0.0.9")])
    assert boot(config, D200, ip="10.0.0.5") == [403]  # not the lease holder's address
    row = phone_row(client, "00:09:52:00:00:0e")
    assert row["state"] == "refused"
    assert row["state_detail"] == "10.0.0.5 is not the phone's lease address (10.0.0.9)"
    assert row["last_fetch"]["reason"] == row["state_detail"]


def test_no_lease_after_it_fetched(config: Config, api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    record(config, leases=[lease(D200)])
    boot(config, D200)
    with State(config.state) as state:
        state.release_lease(D200, IP, time.time())
    assert phone_row(client, "00:09:52:00:00:0e")["state"] == "no lease"


def test_discovered_phones_are_rows_too(config: Config, api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    now = time.time()
    record(
        config,
        leases=[lease(STRANGER, "10.0.0.77")],
        discovered=[Discovered(STRANGER, "10.0.0.77", "Auerswald", "vendor class", now, now)],
    )
    row = phone_row(client, "00:09:52:ab:cd:ef")
    assert row["source"] == "discovered" and row["model"] is None
    assert row["state"] == "never fetched"
    found = client.get("/api/v1/discovered").get_json()["discovered"]
    assert [(d["mac"], d["address"], d["vendor_class"]) for d in found] == [
        ("00:09:52:ab:cd:ef", "10.0.0.77", "Auerswald")
    ]


@pytest.mark.parametrize("mac", ["00:09:52:00:00:0e", "00-09-52-00-00-0E", "0009.5200.000e", D200])
def test_phone_detail_in_any_notation(api: tuple[FlaskClient, str], mac: str) -> None:
    client, _ = api
    detail = client.get(f"/api/v1/phones/{mac}").get_json()
    assert detail["mac"] == "00:09:52:00:00:0e"
    assert detail["entry_url"] == f"http://10.0.0.1:8080/prov.py?mac={D200}"
    assert detail["options"]["66"] == "http://10.0.0.1:8080"
    assert detail["options"]["mac"] == "00:09:52:00:00:0e"
    assert [f["name"] for f in detail["files"]] == [
        "entry", "common.xml", "model.xml", "office.xml", "device.xml",
    ]  # fmt: skip
    assert detail["files"][4]["path"] == f"/prov/D200/{D200}/device.xml"
    device_xml = detail["files"][4]["body"]
    assert "<password>********</password>" in device_xml and "pw201-secret" not in device_xml


def test_reveal_shows_passwords_and_is_logged(
    api: tuple[FlaskClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = api
    with caplog.at_level(logging.WARNING, "phoneprov.admin"):
        detail = client.get("/api/v1/phones/00095200000e?reveal=1").get_json()
    assert "<password>pw201-secret</password>" in detail["files"][4]["body"]
    assert "admin alice revealed the SIP passwords of 00095200000E" in caplog.text


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/v1/phones/nonsense", 400, "not a MAC address"),
        ("/api/v1/phones/00:09:52:00:00:99", 404, "is not in the inventory"),
        ("/api/v1/phones/00:09:52:00:00:99/backup", 404, "is not in the inventory"),
        ("/api/v1/fetches?limit=many", 400, "limit must be a whole number"),
        ("/api/v1/nothing/here", 404, "no such API route"),
    ],
)
def test_errors_are_json(api: tuple[FlaskClient, str], url: str, status: int, message: str) -> None:
    client, _ = api
    response = client.get(url)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_backup_is_the_merged_document(
    api: tuple[FlaskClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = api
    with caplog.at_level(logging.WARNING, "phoneprov.admin"):
        response = client.get("/api/v1/phones/00:09:52:00:00:0e/backup")
    # it holds line 1's password (a restore needs it): logged like a reveal
    assert "admin alice downloaded the backup of 00095200000E" in caplog.text
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="{D200}-backup.xml"'
    root = etree.fromstring(response.data)
    assert root.tag == "configuration"
    assert root.findtext("identities/identity/username") == "201"
    assert root.findtext("identities/identity/password")  # not masked: the restore needs it


def test_fetches_filtered_and_limited(config: Config, api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    record(config, leases=[lease(D200), lease(D400, "10.0.0.6")])
    boot(config, D200)
    boot(config, D400, ip="10.0.0.6")
    every = client.get("/api/v1/fetches").get_json()["fetches"]
    assert len(every) == 11 and every[0]["mac"] == "00:09:52:00:00:1f"
    mine = client.get("/api/v1/fetches?mac=00-09-52-00-00-0e&limit=2").get_json()["fetches"]
    assert [f["path"] for f in mine] == [
        f"/prov/D200/{D200}/device.xml",
        f"/prov/D200/{D200}/office.xml",
    ]
    assert set(mine[0]) == {"time", "mac", "ip", "path", "status", "bytes", "reason"}


def test_doctor_findings(api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    findings = client.get("/api/v1/doctor").get_json()["findings"]
    assert findings and all(set(f) == {"level", "title", "detail", "fix"} for f in findings)
    assert {f["level"] for f in findings} <= {"ok", "warn", "fail"}


def test_models_for_the_enrol_form(api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    models = client.get("/api/v1/models").get_json()
    assert "D200" in models["models"] and models["profiles"] == ["default", "reception"]


# enrolment ----------------------------------------------------------------------------------


def discovered(config: Config, mac: str = STRANGER) -> None:
    now = time.time()
    record(config, discovered=[Discovered(mac, "10.0.0.77", "Auerswald", "vendor class", now, now)])


def enrol(client: FlaskClient, token: str, mac: str, body: Any) -> Any:
    return client.post(
        f"/api/v1/discovered/{mac}/enrol", json=body, headers={"X-CSRF-Token": token}
    )


def test_enrol_adds_the_phone_and_writes_its_dnsmasq_files(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    client, token = api
    discovered(config)
    response = enrol(client, token, "00-09-52-ab-cd-ef", {"model": "d210", "profile": "default"})
    assert response.status_code == 201, response.get_json()
    phone = response.get_json()["phone"]
    assert (phone["mac"], phone["source"], phone["model"]) == (
        "00:09:52:ab:cd:ef",
        "enrolled",
        "D210",
    )
    assert "set:" in (config.dhcp.hostsdir / STRANGER).read_text()  # the options, next DHCP
    assert "http://10.0.0.1:8080" in (config.dhcp.optsdir / STRANGER).read_text()
    rows = client.get("/api/v1/phones").get_json()["phones"]
    assert [r["source"] for r in rows if r["mac"] == "00:09:52:ab:cd:ef"] == ["enrolled"]
    assert client.get("/api/v1/discovered").get_json()["discovered"] == []
    again = enrol(client, token, STRANGER, {"model": "D210", "profile": "default"})
    assert again.status_code == 409


def test_enrol_with_line_1_takes_the_rest_from_the_profile(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    client, token = api
    discovered(config)
    line1 = {"user": "250", "password": "pw250-secret", "display_name": "Lobby"}
    response = enrol(
        client, token, STRANGER, {"model": "D400", "profile": "reception", "line1": line1}
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["phone"]["name"] == "Lobby"
    detail = client.get(f"/api/v1/phones/{STRANGER}?reveal=1").get_json()
    device_xml = detail["files"][-1]["body"]
    assert "<username>250</username>" in device_xml
    assert "<password>pw250-secret</password>" in device_xml
    assert "<registrarPort>5070</registrarPort>" in device_xml  # the profile's line 1


@pytest.mark.parametrize(
    ("mac", "body", "status", "message"),
    [
        (D200, {"model": "D200", "profile": "default"}, 409, "in the inventory already"),
        ("00:09:52:00:99:99", {"model": "D200", "profile": "default"}, 404, "was not discovered"),
        (STRANGER, {"model": "X9", "profile": "default"}, 400, "unknown model 'X9'"),
        (STRANGER, {"model": "D200", "profile": "nope"}, 400, "unknown profile 'nope'"),
        (STRANGER, {"model": "D200"}, 400, '"model" and "profile" are required'),
        (STRANGER, ["D200"], 400, "send a JSON object"),
        (
            STRANGER,
            {"model": "D200", "profile": "default", "line1": {"user": "1"}},
            400,
            "registrar",
        ),
        (
            STRANGER,
            {"model": "D200", "profile": "default", "line1": {"pin": "1"}},
            400,
            "line1 takes",
        ),
        ("zz", {"model": "D200", "profile": "default"}, 400, "not a MAC address"),
    ],
)
def test_enrol_refusals(
    config: Config, api: tuple[FlaskClient, str], mac: str, body: Any, status: int, message: str
) -> None:
    client, token = api
    discovered(config)
    response = enrol(client, token, mac, body)
    assert response.status_code == status
    assert message in response.get_json()["error"]
    assert not (config.dhcp.hostsdir / STRANGER).exists()


# resync: real check-sync NOTIFYs to a SIP peer on loopback ------------------------------


@pytest.fixture
def sip_peer() -> Iterator[list[int]]:
    """A phone's SIP side on 127.0.0.1:5060: answers each request with the status the test
    puts first in the list (0: stays silent)."""
    answers = [200]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 5060))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, source = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if not answers[0]:
                continue
            head = data.decode().split("\r\n\r\n")[0].split("\r\n")
            keep = [
                h
                for h in head[1:]
                if h.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")
            ]
            reply = (
                f"SIP/2.0 {answers[0]} Whatever\r\n"
                + "\r\n".join(keep)
                + "\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendto(reply.encode(), source)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        stop.set()
        thread.join()
        sock.close()


@pytest.fixture
def fast_sip(tmp_path: Path) -> Flask:
    config = admin_config(tmp_path, extra="[sip]\nt1 = 0.05\ntimer_f = 0.5\n")
    record(config, leases=[lease(D200, "127.0.0.1")])
    return create_admin_app(config)


@pytest.mark.parametrize(
    ("answer", "result"), [(200, "accepted"), (486, "refused"), (0, "no answer")]
)
def test_resync(fast_sip: Flask, sip_peer: list[int], answer: int, result: str) -> None:
    client, token = logged_in(fast_sip)
    sip_peer[0] = answer
    response = client.post(f"/api/v1/phones/{D200}/resync", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == result, body
    assert body["detail"].startswith(f"{D200} 127.0.0.1 {result}")


def test_resync_without_lease(api: tuple[FlaskClient, str]) -> None:
    client, token = api
    response = client.post(f"/api/v1/phones/{D100}/resync", headers={"X-CSRF-Token": token})
    assert response.get_json() == {"result": "no lease", "detail": f"{D100} - no lease (not sent)"}
    unknown = client.post(
        "/api/v1/phones/00:09:52:00:99:99/resync", headers={"X-CSRF-Token": token}
    )
    assert unknown.status_code == 404


def test_enrol_says_when_the_dnsmasq_files_cannot_be_written(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    client, token = api
    discovered(config)
    config.dhcp.hostsdir.write_text("not a directory")
    response = enrol(client, token, STRANGER, {"model": "D200", "profile": "default"})
    assert response.status_code == 500
    message = response.get_json()["error"]
    assert message.startswith(
        "00:09:52:ab:cd:ef is enrolled, but its dnsmasq files were not written"
    )
    assert message.endswith("run `phoneprov apply` as root")
    rows = client.get("/api/v1/phones").get_json()["phones"]
    assert [r["source"] for r in rows if r["mac"] == "00:09:52:ab:cd:ef"] == ["enrolled"]


def test_other_http_errors_are_json(api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    response = client.get(f"/api/v1/phones/{D200}/resync")  # POST only
    assert response.status_code == 405 and "error" in response.get_json()


def test_an_outage_is_json_too(config: Config, api: tuple[FlaskClient, str]) -> None:
    client, _ = api
    config.state.write_bytes(b"this is not a database" * 100)
    response = client.get("/api/v1/phones")
    assert response.status_code == 500
    assert "error" in response.get_json()


def test_an_edit_not_yet_resynced_makes_the_changed_phone_pending(
    config: Config, api: tuple[FlaskClient, str]
) -> None:
    from phoneprov.sip.changes import apply_with_changes

    client, _ = api
    record(config, leases=[lease(D200), lease(D400, "10.0.0.6")])
    apply_with_changes(config, time.time())  # `apply --resync` records every phone's digest
    boot(config, D200)
    boot(config, D400, ip="10.0.0.6")
    assert {phone_row(client, m)["state"] for m in ("00:09:52:00:00:0e", "00:09:52:00:00:1f")} == {
        "provisioned"
    }
    inventory = config.inventory_path
    inventory.write_text(inventory.read_text().replace("Front desk", "Front office"))
    edited = time.time()  # after every fetch so far, before any to come
    os.utime(inventory, (edited, edited))
    row = phone_row(client, "00:09:52:00:00:0e")
    assert row["state"] == "pending" and row["name"] == "Front office"
    assert row["state_detail"].startswith("changed since it last fetched: the entry")
    assert phone_row(client, "00:09:52:00:00:1f")["state"] == "provisioned"  # not edited
    boot(config, D200)  # it fetches the new files
    assert phone_row(client, "00:09:52:00:00:0e")["state"] == "provisioned"
