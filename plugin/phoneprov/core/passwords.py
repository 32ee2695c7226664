"""Whether a provisioned password is a hash: the phone takes `<users>` passwords only as
hashes (DSERIES §3.5). Kept apart from the XML modules: the inventory checks it too, and the
dnsmasq hook's auto-enrolment loads the inventory with the standard library only (no lxml).
"""

from __future__ import annotations

import re

HASH_MIN_LENGTH = 20
_CRYPT = re.compile(r"^\$[0-9A-Za-z]+\$\S+$")  # modular crypt: $id$salt$hash, $2b$...
_HEX = re.compile(r"^[0-9A-Fa-f]{32,}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def looks_like_hash(value: str) -> bool:
    """Whether a `<users>` password looks like a hash. The phone's format is unknown (§3.5 [U]),
    so this is a heuristic: a hash is at least HASH_MIN_LENGTH characters and crypt-like
    (`$id$...`), or hex of 32+ digits, or base64 (length a multiple of 4, or unpadded url-safe
    base64). Anything shorter, or with spaces or other punctuation, counts as plain text.

    >>> looks_like_hash("admin"), looks_like_hash("correct horse battery staple")
    (False, False)
    >>> looks_like_hash("5f4dcc3b5aa765d61d8327deb882cf99")
    True
    >>> looks_like_hash("$6$rounds=5000$salt$Qx0Gm1cWd3T7aQk1")
    True
    """
    text = value.strip()
    if len(text) < HASH_MIN_LENGTH or any(c.isspace() for c in text):
        return False
    if _CRYPT.match(text) or _HEX.match(text):
        return True
    return bool(_BASE64.match(text)) and (len(text) % 4 == 0 or "=" not in text)
