"""What the last apply wrote: per file a digest of its bytes and its (inode, mtime, size);
the digest of the inputs it computed them from (inputs.py) and the tombstones it left.

Kept as a dot file in the hostsdir (dnsmasq ignores dot files), so that an apply with nothing
to do need not read 20,000 files back, nor even load the inventory when its inputs are the
same. A file changed or removed behind our back is still
seen: removed names are missing from the directory listing; a rewritten or replaced file has
another inode, mtime or size. An entry is trusted only when the file's mtime is older than
the manifest's own (same clock): a file changed within the clock tick the manifest was
written in is read back, as git does with its index ("racy" entries). A missing, foreign or
damaged manifest only makes the next apply read every file.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from dataclasses import dataclass, field

MANIFEST_NAME = ".phoneprov-manifest"
HEADER = "phoneprov-manifest 2"

Entry = tuple[str, int, int, int]  # digest, inode, mtime_ns, size
Section = dict[str, Entry]


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class Manifest:
    """Sections by directory identity; `stamp`: the manifest file's mtime (ns), 0 if none;
    `inputs`: the inputs' digest ("" when unknown); `tombstones`: host files that are."""

    sections: dict[str, Section] = field(default_factory=dict)
    stamp: int = 0
    inputs: str = ""
    tombstones: tuple[str, ...] = ()

    @classmethod
    def load(cls, dir_fd: int) -> Manifest:
        try:
            fd = os.open(MANIFEST_NAME, os.O_RDONLY, dir_fd=dir_fd)
        except OSError:
            return cls()
        try:
            stamp = os.fstat(fd).st_mtime_ns
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        except OSError:
            return cls()
        finally:
            os.close(fd)
        return cls.parse(b"".join(chunks).decode("ascii", "replace"), stamp)

    @classmethod
    def parse(cls, text: str, stamp: int) -> Manifest:
        """`inputs HEX` and `tombstones NAME...` first, then lines `@ DIR` open a section and
        `NAME DIGEST INODE MTIME SIZE` fill it; a malformed manifest is an empty one.

        >>> m = Manifest.parse(f"{HEADER}\\ninputs 0a\\ntombstones\\n@ 1:2\\nAB 00ff 3 4 5\\n", 9)
        >>> m.sections, m.inputs, m.tombstones
        ({'1:2': {'AB': ('00ff', 3, 4, 5)}}, '0a', ())
        >>> Manifest.parse(f"{HEADER}\\ninputs 0a\\ntombstones\\n@ 1:2\\nAB 00ff 3\\n", 9).sections
        {}
        """
        lines = text.split("\n")
        if len(lines) < 4 or lines[0] != HEADER or lines[-1] != "":
            return cls()
        inputs, tombstones = lines[1].split(" "), lines[2].split(" ")
        if len(inputs) != 2 or inputs[0] != "inputs" or tombstones[0] != "tombstones":
            return cls()
        sections: dict[str, Section] = {}
        section: Section | None = None
        try:
            for line in lines[3:-1]:
                parts = line.split(" ")
                if parts[0] == "@" and len(parts) == 2:
                    section = sections.setdefault(parts[1], {})
                elif section is not None and len(parts) == 5:
                    section[parts[0]] = (parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
                else:
                    return cls()
        except ValueError:
            return cls()
        return cls(sections, stamp, inputs[1], tuple(tombstones[1:]))

    def dump(self) -> str:
        out = [HEADER, f"inputs {self.inputs}", " ".join(("tombstones", *self.tombstones))]
        for where, section in self.sections.items():
            out.append(f"@ {where}")
            out.extend(f"{n} {d} {i} {m} {s}" for n, (d, i, m, s) in section.items())
        return "\n".join(out) + "\n"


def trusted(entry: Entry | None, st: os.stat_result, stamp: int) -> bool:
    """The manifest's entry still describes the file `st` (see the module's docstring)."""
    return (
        entry is not None
        and st.st_mtime_ns < stamp
        and entry[1:] == (st.st_ino, st.st_mtime_ns, st.st_size)
    )


def syncfs_fd(fd: int) -> None:
    """syncfs(2) (Python 3.11's os has none); `os.sync()` where libc lacks it."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if function is None:
        os.sync()
        return
    if function(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
