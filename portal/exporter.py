"""The export directory for AS2 engines on disk: written atomically, only when it changed.

PATH is a symbolic link to a sibling folder `.NAME-<version[:16]>-<random>` that holds a
whole export (what is in it: portal.services.export_dir). A new export is written into
`.NAME.tmp-<random>` (mode 0700 while it is written), every file and folder is fsynced,
the folder is renamed to its versioned name, and one `os.replace` of a new symbolic link
onto PATH switches readers over: a reader sees the old export or the new one, never a
mix. The folder PATH pointed at before stays (a reader halfway through it finishes);
older ones are deleted. A lock file `.NAME.lock` (fcntl.flock) lets one writer at a time
compare and write, so two runners at once write an export once and corrupt nothing.

PATH must be missing or such a link: a real folder or file there (an older layout, or
something a person made) is refused, never deleted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy.orm import Session

from portal.domain.keys import KeyRing
from portal.services import config_export, export_dir
from portal.services.actor import Actor
from portal.services.errors import ServiceError

FOLDER_MODE = 0o750
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one export did: written or unchanged, and which version PATH holds now."""

    path: Path
    version: str  # the config document's version (the API's ETag), as in the `version` file
    written: bool
    files: int = 0  # files written (0 when unchanged)
    keys: int = 0  # PKCS#12 files among them


def refresh(
    session: Session,
    keyring: KeyRing | None,
    path: Path,
    *,
    at: datetime,
    overlap: timedelta,
    passphrase: str | None,
    actor: Actor,
    keep_newer: bool = False,
) -> Outcome:
    """Make PATH hold the export of the document at AT; flushes an audit event if keys went out.

    KEEP_NEWER (the runner): leave an export made for a later moment alone, so a runner
    whose run began earlier never puts the directory back before an activation.
    """
    if passphrase is not None:
        export_dir.check_passphrase(passphrase)
    document = config_export.build(session, at=at, overlap=overlap)
    version = export_dir.export_version(document.version, with_keys=passphrase is not None)

    def files() -> list[export_dir.ExportFile]:
        keys = None
        if passphrase is not None:
            if keyring is None:
                raise ServiceError("Keys cannot be exported without the key ring.")
            keys = export_dir.keystores(session, keyring, document, passphrase=passphrase)
        return export_dir.plan_files(document, keys)

    outcome = publish(
        path,
        document.version,
        version,
        files,
        passphrase=passphrase,
        unless_newer_than=at if keep_newer else None,
    )
    if outcome.keys:
        export_dir.record_keys_written(
            session, actor, keys=outcome.keys, version=document.version, folder=str(outcome.path)
        )
    return outcome


def publish(
    path: Path,
    document_version: str,
    version: str,
    make_files: Callable[[], list[export_dir.ExportFile]],
    *,
    passphrase: str | None = None,
    unless_newer_than: datetime | None = None,
) -> Outcome:
    """Switch PATH to the files MAKE_FILES gives, unless it holds VERSION already (or, with
    UNLESS_NEWER_THAN, an export made for a later moment)."""
    path = Path(os.path.abspath(path))
    check_target(path)
    with _locked(path):
        check_target(path)
        _remove_stale(path)
        if _is_current(path, document_version, version, passphrase):
            return Outcome(path, document_version, written=False)
        if unless_newer_than is not None and _newer(path, unless_newer_than):
            return Outcome(path, document_version, written=False)
        files = make_files()
        _write_and_switch(path, version, files)
    keys = sum(1 for file in files if file.mode == export_dir.KEY_MODE)
    return Outcome(path, document_version, written=True, files=len(files), keys=keys)


def _newer(path: Path, moment: datetime) -> bool:
    """Whether the export at PATH was made for a moment after MOMENT (its manifest says)."""
    try:
        manifest = json.loads((path / "manifest.json").read_bytes())
        made_for = datetime.fromisoformat(str(manifest["generated_at"]).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no readable export there: nothing to keep
    return made_for > moment


def failure_text(error: Exception) -> str:
    """ERROR as one line for the operator: paths and reasons, never a passphrase."""
    if isinstance(error, ServiceError):
        return error.message
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return " ".join(f"{type(error).__name__}: {error}".split())


def check_target(path: Path) -> None:
    """Refuse a PATH this module must not replace: a real folder or file, or a foreign link."""
    if not path.name or path.name in (".", ".."):
        raise ServiceError(f"{path} cannot be an export directory; name a folder inside it.")
    if not path.parent.is_dir():
        raise ServiceError(f"The folder {path.parent} does not exist; create it first.")
    if path.is_symlink():
        target = os.readlink(path)
        if not _versioned(path.name).fullmatch(target):
            raise ServiceError(
                f"{path} is a symbolic link to {target}, not to an export this portal wrote; "
                "remove the link or choose another directory."
            )
    elif os.path.lexists(path):
        raise ServiceError(
            f"{path} exists and is not an export this portal wrote (it is a real folder or "
            "file, perhaps an older export or one made by hand); move it away or choose "
            "another directory. It is never deleted."
        )


def _versioned(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f".{name}-") + r"[0-9a-f]{16}-[0-9a-f]{8}")


def _scratch(name: str) -> re.Pattern[str]:
    """Names of folders and links a writer makes before its switch (stale if seen by a writer)."""
    return re.compile(re.escape(f".{name}.") + r"(tmp|link)-[0-9a-f]{8}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the export's lock file: one writer at a time, across threads and processes."""
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _is_current(path: Path, document_version: str, version: str, passphrase: str | None) -> bool:
    """Whether PATH holds VERSION (and, with keys, keys readable with PASSPHRASE)."""
    if not path.is_symlink():
        return False
    folder = path.parent / os.readlink(path)
    if not folder.name.startswith(f".{path.name}-{version[:16]}-"):
        return False
    try:
        if (folder / "version").read_text().strip() != document_version:
            return False
        return passphrase is None or _keys_open(folder, passphrase)
    except OSError:
        return False


def _keys_open(folder: Path, passphrase: str) -> bool:
    """Whether the export's keystores open with PASSPHRASE (a changed one means a rewrite)."""
    for keystore in sorted(folder.rglob("*.p12")):
        try:
            pkcs12.load_key_and_certificates(keystore.read_bytes(), passphrase.encode())
        except ValueError:
            return False
        return True
    return True


def _write_and_switch(path: Path, version: str, files: list[export_dir.ExportFile]) -> None:
    parent, name = path.parent, path.name
    previous = os.readlink(path) if path.is_symlink() else None
    temp = parent / f".{name}.tmp-{secrets.token_hex(4)}"
    os.mkdir(temp, 0o700)
    try:
        _write_tree(temp, files)
        os.chmod(temp, FOLDER_MODE)
        folder = parent / f".{name}-{version[:16]}-{secrets.token_hex(4)}"
        os.rename(temp, folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    try:
        _switch(path, folder.name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _fsync(parent)
    _remove_old(path, keep={folder.name, previous})


def _write_tree(root: Path, files: list[export_dir.ExportFile]) -> None:
    folders = {root}
    for file in files:
        relative = _relative(file.path)
        target = root
        for part in relative.parts[:-1]:
            target = target / part
            if target not in folders:
                os.mkdir(target, FOLDER_MODE)
                os.chmod(target, FOLDER_MODE)  # whatever the umask
                folders.add(target)
        _write_file(root.joinpath(*relative.parts), file.data, file.mode)
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        _fsync(folder)


def _relative(text: str) -> PurePosixPath:
    """TEXT as a path inside the export; anything that could leave it is refused."""
    relative = PurePosixPath(text)
    if (
        relative.is_absolute()
        or not relative.parts
        or any(part in ("", ".", "..") for part in relative.parts)
        or any(ord(char) < 0x20 or char in "\\\x7f" for char in text)
    ):
        raise ValueError(f"{text!r} is not a safe path inside the export")
    return relative


def _write_file(target: Path, data: bytes, mode: int) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch(path: Path, folder_name: str) -> None:
    """Point PATH at FOLDER_NAME with one rename of a new link over it."""
    link = path.parent / f".{path.name}.link-{secrets.token_hex(4)}"
    os.symlink(folder_name, link)
    try:
        os.replace(link, path)
    except BaseException:
        link.unlink(missing_ok=True)
        raise


def _fsync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(path: Path) -> None:
    """Remove what a writer that died before its switch left (only writers hold the lock)."""
    scratch = _scratch(path.name)
    for entry in os.scandir(path.parent):
        if scratch.fullmatch(entry.name):
            _remove(Path(entry.path))


def _remove_old(path: Path, keep: set[str | None]) -> None:
    """Remove versioned folders of PATH other than KEEP (the new one and the one before it)."""
    versioned = _versioned(path.name)
    for entry in os.scandir(path.parent):
        if versioned.fullmatch(entry.name) and entry.name not in keep:
            _remove(Path(entry.path))


def _remove(entry: Path) -> None:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError as error:  # a leftover is harmless; the next write tries again
        log.warning("Could not remove %s: %s", entry, error.strerror)
