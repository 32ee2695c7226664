"""`phoneprov export static`: the files `serve` would send, as a tree any web server can serve.

Every device's documents lie exactly where a phone asks for them in token mode:
`t/<token>/<query_path>` (the query-style entry: a static server ignores `?mac=`),
`t/<token>/prov/<TYPE>/<MAC>.xml` (the path-style entry) and `t/<token>/prov/<TYPE>/<MAC>/<file>`
(the files both entries list). Both entries are written, as `serve` answers both.

The tree is never half-written where a web server reads it: DIR is a symlink to a build
directory beside it (`.<DIR name>.export-*`, holding the MARKER file); a new export is built
in full beside the current one, then the symlink is replaced (one rename). The previous build
stays until the next export (a request that resolved the old path a moment ago still finds
its file); older builds of ours are removed, nothing that lacks the marker ever is.

Validators: nginx and Caddy derive ETag and Last-Modified from a file's mtime and size, so a
file whose bytes did not change keeps the previous build's mtime (the phone's cached copy
stays valid: 304), and a changed one is dated at least a second after it (a new ETag even
when the size is the same and both exports ran within one second).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..core.errors import InputError
from ..core.inventory import Inventory
from ..core.layout import STYLES, Layout, ProvRequest, device_token, request_path
from ..durable import flush_tree, fsync_dir
from ..render import Catalog

MARKER = ".phoneprov-export"
MARKER_TEXT = b"a build of `phoneprov export static`: the next export may remove it\n"
BUILD_INFIX = ".export-"  # a build of DIR is <parent>/.<name>.export-<random>
DIR_MODE, FILE_MODE = 0o755, 0o644  # a web server running as any user reads them
TOKENS_MODE = 0o711  # t/: a web server passes through, no local user lists the tokens
ONE_SECOND_NS = 1_000_000_000
NO_PARENT = "{}: no such directory (the export is built beside DIR)"


class Document(NamedTuple):
    """One document of a device in the export: an entry (`style`) or a settings file (`name`)."""

    path: str  # relative to the export root, no leading slash
    style: str | None = None
    name: str | None = None


def export_paths(
    layout: Layout, device_type: str, mac: str, token: str, names: Sequence[str]
) -> list[Document]:
    """Where a device's entries (both styles) and files lie: the paths a phone requests,
    e.g. `t/<token>/prov.py`, `t/<token>/prov/D200/00095200000E.xml` and
    `t/<token>/prov/D200/00095200000E/common.xml`."""
    entries = [
        Document(_path(layout, ProvRequest(mac, None, style, device_type, token)), style=style)
        for style in STYLES
    ]
    files = [
        Document(_path(layout, ProvRequest(mac, name, "path", device_type, token)), name=name)
        for name in names
    ]
    return entries + files


def _path(layout: Layout, req: ProvRequest) -> str:
    """The request path without the query (a static server ignores `?mac=`) or leading '/'."""
    return request_path(layout, req).partition("?")[0].removeprefix("/")


def export_files(catalog: Catalog, secret: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every document of every device: the bytes `serve` sends.

    Raises ConfigError (template:line) on the first file that cannot be rendered."""
    layout = catalog.layout
    for device in catalog.inventory.devices.values():
        token = device_token(secret, device.mac)
        names = catalog.names(device)
        for doc in export_paths(layout, device.type, device.mac, token, names):
            if doc.style is not None:
                yield doc.path, catalog.entry(device, doc.style).body
            else:
                assert doc.name is not None
                rendered = catalog.file(device, doc.name)
                assert rendered is not None  # names() lists only the device's files
                yield doc.path, rendered.body


def redirect_lines(inventory: Inventory, layout: Layout, base_url: str, secret: bytes) -> list[str]:
    """`MAC,URL` per device: the entry URL with its token, for the redirect service's portal
    (`00095200000E,https://prov.example.com/t/<token>/prov.py?mac=00095200000E`)."""
    return [
        f"{d.mac},{layout.entry_url(base_url, d.type, d.mac, device_token(secret, d.mac))}"
        for d in inventory.devices.values()
    ]


@dataclass(frozen=True)
class ExportResult:
    target: Path  # DIR, the symlink
    build: Path  # what it points to now
    previous: Path | None  # what it pointed to before (kept until the next export)
    files: int
    devices: int

    def summary(self) -> str:
        kept = ""
        if self.previous is not None:
            kept = f"; the previous build {self.previous.name} stays until the next export"
        return (
            f"exported {self.devices} device(s), {self.files} files, to {self.target} "
            f"(-> {self.build.name}){kept}"
        )


def write_tree(target: str | os.PathLike[str], files: Iterable[tuple[str, bytes]]) -> ExportResult:
    """Write `files` into a new build beside `target`, then point `target` at it atomically.

    `target` may be missing, an empty directory, or a symlink to one of our builds; anything
    else is refused (InputError) untouched. If `files` raises, the build is removed and
    `target` is untouched. One export of a directory at a time (InputError while another
    runs: it could otherwise remove the build the other just switched to)."""
    target = Path(os.path.abspath(target))
    with _exclusive(target):
        return _write_tree(target, files)


def _write_tree(target: Path, files: Iterable[tuple[str, bytes]]) -> ExportResult:
    previous = _previous_build(target)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}{BUILD_INFIX}", dir=target.parent))
    try:
        os.chmod(build, DIR_MODE)
        _write(build / MARKER, MARKER_TEXT)
        count, tokens = 0, set()
        for relative, body in files:
            path = _inside(build, relative)
            _makedirs(build, path.parent)
            _write(path, body)
            if previous is not None:
                _keep_validators(path, previous / relative, body)
            count += 1
            tokens.add(relative.split("/")[1])
        _switch(target, build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    _remove_old_builds(target, keep={build.name, previous.name if previous else ""})
    return ExportResult(target, build, previous, count, len(tokens))


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """An exclusive lock on the directory the builds of `target` live in (no file of ours)."""
    try:
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(NO_PARENT.format(target.parent)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{target}: another export into it is running; try again") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _previous_build(target: Path) -> Path | None:
    """The build `target` points to; None when there is none yet. InputError when `target`
    is something that is not ours to replace."""
    if target.is_symlink():
        link = os.readlink(target)
        build = target.parent / link
        if (
            "/" not in link
            and link.startswith(f".{target.name}{BUILD_INFIX}")
            and (build / MARKER).is_file()
        ):
            return build
        raise InputError(
            f"{target}: a symlink to {link}, which is not a build of `phoneprov export static`; "
            "refusing to replace it (remove it or choose another DIR)"
        )
    if target.is_dir():
        if any(target.iterdir()):
            raise InputError(
                f"{target}: a directory that is not a phoneprov export (an export is a symlink "
                "to a build beside it); refusing to touch it (choose another DIR)"
            )
        return None
    if target.exists():
        raise InputError(f"{target}: not a directory; refusing to replace it")
    return None


def _inside(build: Path, relative: str) -> Path:
    parts = relative.split("/")
    if relative.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] != "t":
        raise InputError(f"not an export path: {relative!r}")
    return build.joinpath(*parts)


def _makedirs(build: Path, directory: Path) -> None:
    """Create `directory` and its parents up to `build`, each DIR_MODE whatever the umask."""
    missing = []
    while directory != build and not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
        os.chmod(path, TOKENS_MODE if path.parent == build else DIR_MODE)


def _write(path: Path, body: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), FILE_MODE)  # the umask may have taken bits away
        out.write(body)


def _keep_validators(path: Path, old: Path, body: bytes) -> None:
    """Same bytes as the previous build: its mtime; other bytes: a later second than it."""
    try:
        st = os.stat(old)
        same = st.st_size == len(body) and old.read_bytes() == body
    except OSError:
        return  # new in this export: its write time is new
    if same:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    later = st.st_mtime_ns + ONE_SECOND_NS
    if os.stat(path).st_mtime_ns < later:
        os.utime(path, ns=(later, later))


def _switch(target: Path, build: Path) -> None:
    """Point `target` at `build` with one rename (an empty directory is removed first)."""
    flush_tree(build)  # after a power cut DIR names a complete build, the old or the new
    if target.is_dir() and not target.is_symlink():
        target.rmdir()  # _previous_build made sure it is empty
    link = target.parent / f".{target.name}.link-{secrets.token_hex(4)}"
    os.symlink(build.name, link)  # relative: the pair can move together
    try:
        os.replace(link, target)
    except OSError:
        link.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def _remove_old_builds(target: Path, keep: set[str]) -> None:
    """Remove our builds of `target` other than `keep` (left by earlier or killed exports)."""
    prefix = f".{target.name}{BUILD_INFIX}"
    for entry in target.parent.iterdir():
        if (
            entry.name.startswith(prefix)
            and entry.name not in keep
            and not entry.is_symlink()
            and (entry / MARKER).is_file()
        ):
            shutil.rmtree(entry, ignore_errors=True)
