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

Its head also holds, per directory, a digest of every file's (name, inode, mtime, size):
an apply whose inputs are unchanged compares that with the directory as it is (one listing,
one `stat` per file) without parsing the 20,000 lines below.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

MANIFEST_NAME = ".phoneprov-manifest"
HEADER = "phoneprov-manifest 3"

Entry = tuple[str, int, int, int]  # digest, inode, mtime_ns, size
Section = dict[str, Entry]


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def state_digest(files: list[tuple[str, int, int, int]]) -> str:
    """Of a directory's files as (name, inode, mtime_ns, size), sorted by name."""
    return digest("".join(f"{n} {i} {m} {s}\n" for n, i, m, s in files).encode())


def section_state(section: Section) -> str:
    return state_digest(sorted((n, i, m, s) for n, (_d, i, m, s) in section.items()))


@dataclass
class Manifest:
    """Sections by directory identity; `stamp`: the manifest file's mtime (ns), 0 if none;
    `inputs`: the inputs' digest ("" when unknown); `tombstones`: host files that are;
    `states`: each section's `section_state`, by directory identity."""

    sections: dict[str, Section] = field(default_factory=dict)
    stamp: int = 0
    inputs: str = ""
    tombstones: tuple[str, ...] = ()
    states: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, dir_fd: int, head_only: bool = False) -> Manifest:
        """The manifest in `dir_fd`; `head_only`: without its sections (`states` says what
        they hold)."""
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
        return cls.parse(b"".join(chunks).decode("ascii", "replace"), stamp, head_only)

    @classmethod
    def parse(cls, text: str, stamp: int, head_only: bool = False) -> Manifest:
        """`inputs HEX`, `tombstones NAME...` and `states DIR=HEX...` first, then lines
        `@ DIR` open a section and `NAME DIGEST INODE MTIME SIZE` fill it; a malformed
        manifest is an empty one.

        >>> text = f"{HEADER}\\ninputs 0a\\ntombstones\\nstates 1:2=ff\\n@ 1:2\\nAB 00ff 3 4 5\\n"
        >>> m = Manifest.parse(text, 9)
        >>> m.sections, m.inputs, m.tombstones, m.states
        ({'1:2': {'AB': ('00ff', 3, 4, 5)}}, '0a', (), {'1:2': 'ff'})
        >>> Manifest.parse(text, 9, head_only=True).sections
        {}
        >>> Manifest.parse(text.replace("4 5", "4"), 9).sections
        {}
        """
        lines = text.split("\n", -1 if not head_only else 4)
        if len(lines) < 5 or lines[0] != HEADER or (lines[-1] != "" and not head_only):
            return cls()
        inputs, tombstones, states = (line.split(" ") for line in lines[1:4])
        if (
            len(inputs) != 2
            or (inputs[0], tombstones[0], states[0]) != ("inputs", "tombstones", "states")
            or not all(s.count("=") == 1 for s in states[1:])
        ):
            return cls()
        head = (stamp, inputs[1], tuple(tombstones[1:]), dict(s.split("=") for s in states[1:]))
        if head_only:
            return cls({}, *head)
        sections: dict[str, Section] = {}
        section: Section | None = None
        try:
            for line in lines[4:-1]:
                parts = line.split(" ")
                if parts[0] == "@" and len(parts) == 2:
                    section = sections.setdefault(parts[1], {})
                elif section is not None and len(parts) == 5:
                    section[parts[0]] = (parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
                else:
                    return cls()
        except ValueError:
            return cls()
        return cls(sections, *head)

    def dump(self) -> str:
        """The file's text; `states` are computed here from the sections."""
        out = [HEADER, f"inputs {self.inputs}", " ".join(("tombstones", *self.tombstones))]
        out.append(
            " ".join(["states", *(f"{w}={section_state(s)}" for w, s in self.sections.items())])
        )
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
