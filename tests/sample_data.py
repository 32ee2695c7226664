"""Sample inventories and configs shared by several test modules (on pytest's pythonpath)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

# Two phones on the shipped templates: the D200 and D400 of conf/inventory.toml.
TWO_PHONES_INVENTORY = """
[profiles.default]
templates = ["office.xml"]
[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "default"
lines = [{ username = "201", password = "pw201", registrar = "pbx.example.lan" }]
[[devices]]
mac = "00:09:52:00:00:1f"
type = "D400"
profile = "default"
lines = [{ username = "202", password = "pw202", registrar = "pbx.example.lan" }]
"""


# The plan and `apply --resync` CLI tests' site: four phones over two profiles of the shipped
# templates.
TEMPLATES = Path(__file__).resolve().parents[1] / "conf" / "templates"
FRONT, RECEPTION, WAREHOUSE, NEW = "00095200000E", "00095200001F", "000952000030", "000952000041"
PROFILES = """\
[profiles.default]
templates = ["office.xml"]
[profiles.reception]
templates = ["office.xml", "reception.xml"]
"""


def device(mac: str, model: str, profile: str, user: str, name: str = "Phone") -> str:
    return (
        f'[[devices]]\nmac = "{mac}"\ntype = "{model}"\nprofile = "{profile}"\n'
        f'[[devices.lines]]\nusername = "{user}"\npassword = "pw"\ndisplay_name = "{name}"\n'
        'registrar = "pbx.example.lan"\n'
    )


def four_phones(*extra: str, front: str = "Front desk") -> str:
    """The inventory of that site: FRONT (named `front`), RECEPTION and WAREHOUSE, then `extra`."""
    return (
        PROFILES
        + device(FRONT, "D200", "default", "201", front)
        + device(RECEPTION, "D400", "reception", "202")
        + device(WAREHOUSE, "D100", "default", "203")
        + "".join(extra)
    )


# For the SIP policy tests: one known D400, a phone of another vendor, one of our OUI.
KNOWN, OTHER_VENDOR, SAME_OUI = "00095200000E", "001122334455", "000952ABCDEF"


def write_sip_config(tmp_path: Path, policy: str = "known") -> Path:
    """A config with one known device (KNOWN) and the given sip.pnp_policy."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["base.xml"]\n'
        f'[[devices]]\nmac = "{KNOWN}"\ntype = "D400"\nprofile = "default"\n'
    )
    path = tmp_path / "phoneprov.toml"
    path.write_text(
        '[server]\nurl = "http://prov.lan:8080"\n'
        f'[sip]\npnp_policy = "{policy}"\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    return path


def write_hook_site(root: Path, dhcp_extra: str = "") -> Path:
    """A site with one known D200 (00:09:52:00:00:0e), applied: what the hook reads."""
    from phoneprov.config import load_config
    from phoneprov.dnsmasq.apply import apply

    (root / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["office.xml"]\n'
        '[[devices]]\nmac = "00:09:52:00:00:0e"\ntype = "D200"\nprofile = "default"\n'
    )
    (root / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n'
        '[dhcp]\nmode = "66+67"\nvendor_classes = ["Auerswald"]\n'
        f'hostsdir = "hosts"\noptsdir = "opts"\n{dhcp_extra}'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    apply(load_config(root / "pp.toml"))
    return root


def remove_site(root: str | os.PathLike[str]) -> None:
    """Remove a site directory for good: a hook dnsmasq started may still be adding a file
    (its database's -wal/-shm) while the first removal runs; bounded retries."""
    for _ in range(50):
        shutil.rmtree(root, ignore_errors=True)
        if not os.path.exists(root):
            return
        time.sleep(0.1)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1, made by openssl in `directory`, valid a day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
