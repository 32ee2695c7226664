"""MAC address normalisation: every notation an admin or a phone uses, one canonical form."""

from __future__ import annotations

from .errors import InputError

# No `re` here: the dnsmasq hook imports this module once per DHCP event.
HEX = frozenset("0123456789abcdefABCDEF")
NORMAL = frozenset("0123456789ABCDEF")


def _hex_groups(text: str, separators: str, count: int, width: int) -> str | None:
    """The hex digits of `text` when it is `count` groups of `width` joined by one of
    `separators` (the same one throughout), else None."""
    for sep in separators or [""]:
        parts = text.split(sep) if sep else [text]
        if len(parts) == count and all(len(p) == width and HEX.issuperset(p) for p in parts):
            return "".join(parts)
    return None


def norm_mac(text: str) -> str:
    """Return the MAC as the phone writes it: 12 upper-case hex digits, no separators.

    >>> norm_mac("00:09:52:00:00:0e")
    '00095200000E'
    >>> norm_mac("00-09-52-00-00-0E")
    '00095200000E'
    >>> norm_mac("0009.5200.000e")
    '00095200000E'
    >>> norm_mac(" 00095200000e ")
    '00095200000E'
    >>> norm_mac("00:09:52-00:00:0e")
    Traceback (most recent call last):
    ...
    phoneprov.core.errors.InputError: not a MAC address: '00:09:52-00:00:0e'
    """
    if isinstance(text, str) and len(text) == 12 and NORMAL.issuperset(text):
        return text  # already normal: the common case (10,000 devices per apply)
    stripped = text.strip() if isinstance(text, str) else ""
    bare = (
        _hex_groups(stripped, ":-", 6, 2)
        or _hex_groups(stripped, ".", 3, 4)
        or _hex_groups(stripped, "", 1, 12)
    )
    if bare is None:
        raise InputError(f"not a MAC address: {text!r}")
    return bare.upper()


def colon_mac(text: str) -> str:
    """The lower-case colon form dnsmasq uses: `00:09:52:00:00:0e`.

    >>> colon_mac("00095200000E")
    '00:09:52:00:00:0e'
    """
    bare = norm_mac(text).lower()
    return ":".join(bare[i : i + 2] for i in range(0, 12, 2))


def norm_oui(text: str) -> str:
    """An OUI (first three octets) as 6 upper-case hex digits.

    >>> norm_oui("00:09:52")
    '000952'
    >>> norm_oui("00-09-52")
    '000952'
    """
    stripped = text.strip() if isinstance(text, str) else ""
    bare = _hex_groups(stripped, ":-", 3, 2) or _hex_groups(stripped, "", 1, 6)
    if bare is None:
        raise InputError(f"not an OUI (like 00:09:52): {text!r}")
    return bare.upper()


def mac_has_oui(mac: str, ouis: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """True when the MAC's first three octets are one of `ouis` (normalised OUIs).

    >>> mac_has_oui("00:09:52:00:00:0e", {"000952"})
    True
    """
    return norm_mac(mac)[:6] in ouis
