"""The admin's pages: server-rendered shells whose data `static/admin.js` loads from the JSON
API (`/api/v1`) of the same service, so the pages and scripts see the same data.

Authentication is the app's (`create_admin_app`): every page here needs a session.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from ..core.errors import InputError
from ..core.mac import colon_mac

REFRESH_MS = 3000  # the phones page asks the API again this often
PHONE_REFRESH_MS = 5000  # a phone's page (not while its passwords are revealed)
DISCOVERED_REFRESH_MS = 5000

# The phones table's columns: key (admin.js knows each) and header.
PHONE_COLUMNS = (
    ("mac", "MAC"),
    ("model", "Model"),
    ("profile", "Profile"),
    ("name", "Line 1"),
    ("address", "Address"),
    ("expires", "Lease until"),
    ("fetch_time", "Last fetch"),
    ("fetch_path", "File"),
    ("fetch_status", "Status"),
    ("state", "State"),
)

pages = Blueprint("pages", __name__, template_folder="templates")


@pages.get("/")
def phones() -> str:
    return render_template("phones.html", columns=PHONE_COLUMNS, refresh_ms=REFRESH_MS)


@pages.get("/phones/<mac>")
def phone(mac: str) -> str:
    try:
        mac = colon_mac(mac)
    except InputError:
        abort(404)
    return render_template("phone.html", mac=mac, refresh_ms=PHONE_REFRESH_MS)


@pages.get("/discovered")
def discovered() -> str:
    return render_template("discovered.html", refresh_ms=DISCOVERED_REFRESH_MS)


@pages.get("/doctor")
def doctor() -> str:
    return render_template("doctor.html")
