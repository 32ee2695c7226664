"""What the serving process loads (bench_memory.py measures what it saves): neither lxml nor
OpenSSL, unless `server.validate` asks serve to check what it renders against the schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from phoneprov.config import Config

# One worker's life, without uWSGI: import the WSGI module, fetch the entry file and every
# file it lists, report what got imported.
SERVE_ALL = """
import io, json, re, sys
from urllib.parse import urlsplit
from phoneprov.core.reference import resolve_reference
from phoneprov.web import wsgi

def get(path):
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "REMOTE_ADDR": "10.0.0.9", "SERVER_NAME": "x", "SERVER_PORT": "8080",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr}
    status = []
    body = b"".join(wsgi.application(environ, lambda s, h, e=None: status.append(s)))
    return status[0], body

status, entry = get("/prov.py?mac=00095200000E")
urls = [urlsplit(resolve_reference("http://x/prov.py", url))
        for url in re.findall(r"<url>(.*?)</url>", entry.decode())]
files = [get(url.path + "?" + url.query)[0] for url in urls]
print(json.dumps({
    "statuses": [status, *files],
    "lxml": "lxml.etree" in sys.modules,
    "openssl": any(sys.modules.get(m) is not None for m in ("_hashlib", "_ssl")),
}))
"""


def serve_all(config: Path, validate: str = "false") -> tuple[dict[str, object], str]:
    config.write_text(
        config.read_text().replace("[server]\n", f"[server]\nvalidate = {validate}\n")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}  # no coverage
    env |= {"PHONEPROV_CONFIG": str(config), "PHONEPROV_LOG_LEVEL": "INFO"}  # (it loads hashlib)
    done = subprocess.run(
        [sys.executable, "-c", SERVE_ALL], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_serving_loads_neither_lxml_nor_openssl(site: Callable[..., Config]) -> None:
    found, log = serve_all(site("open").path)
    assert found["statuses"] == ["200 OK"] * 5  # the entry file and the four it lists
    assert found == {"statuses": found["statuses"], "lxml": False, "openssl": False}
    assert "does not fit" not in log


@pytest.mark.parametrize("validate", ["true", "false"])
def test_validate_logs_a_file_the_phone_would_drop(
    site: Callable[..., Config], validate: str
) -> None:
    config = site("open")
    office = config.templates / "profiles" / "office.xml.j2"
    office.write_text(office.read_text().replace("<callWaiting>", "<noSuchElement/><callWaiting>"))
    found, log = serve_all(config.path, validate)
    assert found["statuses"] == ["200 OK"] * 5  # served all the same: `check` is the gate
    assert found["lxml"] is (validate == "true")
    assert ("office.xml for 00095200000E does not fit the phone's settings schema" in log) is (
        validate == "true"
    )
