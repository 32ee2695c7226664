import pytest

from phoneprov.core.markers import DeviceInfo, replace_markers

D200 = DeviceInfo(mac="00:09:52:00:00:0e", type="D200", serial="S123")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://p/prov.py?mac=<MACADR>", "http://p/prov.py?mac=00095200000E"),
        ("http://p/{mac}.xml", "http://p/00095200000E.xml"),
        ("http://p/<HWTYP>.bak", "http://p/D200.bak"),
        ("http://p/{type}/{serial}", "http://p/D200/S123"),
        ("http://p/<SERIAL>/<SERIAL>", "http://p/S123/S123"),
        ("http://p/<MACADR>-<HWTYP>-<SERIAL>", "http://p/00095200000E-D200-S123"),
        ("http://p/<macadr>", "http://p/<macadr>"),  # markers are case-sensitive
    ],
)
def test_seed_markers(url, expected):
    assert replace_markers(url, D200) == expected


def test_marker_without_value_stays():
    device = DeviceInfo(mac="00095200000e")
    assert replace_markers("<SERIAL>/{type}/<MACADR>", device) == "<SERIAL>/{type}/00095200000E"
