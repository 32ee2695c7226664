"""MAC address normalisation: every notation an admin or a phone uses, one canonical form."""

from __future__ import annotations

import re

from .errors import InputError

# Accepted notations, checked as a whole: 6 groups of 2 (':' or '-'), 3 groups of 4 ('.'),
# or 12 bare hex digits.
_MAC_FORMS = re.compile(
    r"""^(?:
        [0-9a-f]{2}(?:([:-])[0-9a-f]{2})(?:\1[0-9a-f]{2}){4}
      | [0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}
      | [0-9a-f]{12}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


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
    stripped = text.strip() if isinstance(text, str) else ""
    if not _MAC_FORMS.match(stripped):
        raise InputError(f"not a MAC address: {text!r}")
    return re.sub(r"[^0-9a-fA-F]", "", stripped).upper()


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
    if not re.fullmatch(r"[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}\1[0-9a-fA-F]{2}", stripped):
        raise InputError(f"not an OUI (like 00:09:52): {text!r}")
    return re.sub(r"[^0-9a-fA-F]", "", stripped).upper()


def mac_has_oui(mac: str, ouis: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """True when the MAC's first three octets are one of `ouis` (normalised OUIs).

    >>> mac_has_oui("00:09:52:00:00:0e", {"000952"})
    True
    """
    return norm_mac(mac)[:6] in ouis
