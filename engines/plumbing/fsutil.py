"""Crash-safe file writes: temporary name, fsync, rename, fsync the folder.

A crash at any moment leaves either the previous file or the new one under the
final name, never a half-written file. Temporaries carry the writer's pid so a
later run can tell an abandoned one from one still being written, and the writer's
start time so a later process given the same pid is not taken for the writer.
"""

import contextlib
import errno
import glob
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engines.plumbing.paths import default_cache_dir
from engines.plumbing.processes import owner_gone, owner_token

TEMP_MARKER = ".tmp-"
FILE_MODE = 0o600
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
# Room a work folder keeps beyond what its caller names (tables of contents, spools).
WORK_FOLDER_MARGIN = 64 * 1024 * 1024
DIR_MODE = 0o700


def temporary_path_for(final_path: Path) -> Path:
    token = secrets.token_hex(4)
    return final_path.with_name(f".{final_path.name}{TEMP_MARKER}{owner_token()}-{token}")


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> Path:
    """Create `directory` (and parents) and make the leaf owner-only."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(directory, DIR_MODE)
    return directory


@contextlib.contextmanager
def atomic_output(final_path: Path, mode: int = FILE_MODE) -> Iterator[BinaryIO]:
    """Yield a binary file that appears under `final_path` only on success."""
    temporary = temporary_path_for(final_path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final_path)
        fsync_directory(final_path.parent)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        if isinstance(error, OSError) and error.filename in (None, str(temporary)):
            error.filename = str(final_path)  # said of the file the operator named
        raise


def _owner(tail: str) -> tuple[int, str | None] | None:
    """(pid, start token or None) from `<pid>-<start>-<random>` or the older `<pid>-<random>`."""
    parts = tail.split("-")
    if not parts[0].isdigit() or len(parts) < 2:
        return None
    start = parts[1] if len(parts) >= 3 and parts[1].isdigit() else None
    return int(parts[0]), start


def _abandoned(path: Path, tail: str) -> bool:
    owner = _owner(tail)
    if owner is None:
        return False
    try:
        changed = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return owner_gone(owner[0], owner[1], last_change=changed)


def remove_abandoned_temporaries(root: Path) -> list[Path]:
    """Delete temporaries under `root` whose writing process is gone, and the work folders
    (`<root>/.<purpose>/work-*`) a killed process left behind."""
    removed: list[Path] = []
    if not root.exists():
        return removed
    for path in root.rglob(f".*{TEMP_MARKER}*"):
        if path.is_file() and _abandoned(path, path.name.rsplit(TEMP_MARKER, 1)[1]):
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a read-only repository: what cannot go stays for a later run
                continue
            removed.append(path)
    for parent in root.glob(".*"):
        if parent.is_dir() and not parent.is_symlink():
            removed.extend(_remove_abandoned_work_folders(parent))
    return removed


def remove_abandoned_temporaries_of(final_path: Path) -> list[Path]:
    """The temporaries of `final_path` alone (in a folder that is not ours, e.g. a Redis
    data folder) whose writing process is gone."""
    removed = []
    for path in final_path.parent.glob(f".{glob.escape(final_path.name)}{TEMP_MARKER}*"):
        if path.is_file() and _abandoned(path, path.name.rsplit(TEMP_MARKER, 1)[1]):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(path)
    return removed


def _remove_abandoned_work_folders(parent: Path) -> list[Path]:
    removed = []
    for folder in parent.glob("work-*"):
        if folder.is_dir() and _abandoned(folder, folder.name.removeprefix("work-")):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _has_room(folder: Path, needed: int) -> bool:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return shutil.disk_usage(existing).free >= needed + WORK_FOLDER_MARGIN
    except OSError:
        return True  # let creating the folder say what is wrong


def _new_work_folder(parent: Path) -> Path:
    ensure_private_dir(parent)
    _remove_abandoned_work_folders(parent)
    return Path(tempfile.mkdtemp(prefix=f"work-{owner_token()}-", dir=parent))


@contextlib.contextmanager
def private_work_folder(repository_root: Path, purpose: str, *, needed: int = 0) -> Iterator[Path]:
    """An owner-only scratch folder in the repository (same disk, same privacy), removed
    afterwards; folders a killed process left behind are removed on the next use. A
    repository this process cannot write (a read-only mount, another user's files) or
    without room for `needed` bytes gets its scratch folder in the user's cache folder
    instead, so restores from a read-only or full repository work."""
    folder = None
    if _has_room(repository_root, needed):
        try:
            folder = _new_work_folder(repository_root / f".{purpose}")
        except OSError as error:
            if error.errno not in UNWRITABLE | NO_SPACE:
                raise
    if folder is None:
        folder = _new_work_folder(default_cache_dir() / "work" / purpose)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_abandoned_folders_of(final: Path) -> None:
    """The staging folders of `final` a killed process left (an export's: decrypted data)."""
    for path in final.parent.glob(f".{glob.escape(final.name)}{TEMP_MARKER}*"):
        tail = path.name.rsplit(TEMP_MARKER, 1)[1]
        if path.is_dir() and not path.is_symlink() and _abandoned(path, tail):
            _remove_tree(path)


def _remove_tree(folder: Path) -> None:
    """`folder` and everything in it, even where a folder inside was made read-only (ours:
    each is made owner-writable again before it is emptied)."""
    with contextlib.suppress(OSError):
        os.chmod(folder, DIR_MODE)
        for root, folders, _ in os.walk(folder):
            for name in folders:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, DIR_MODE)
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a new owner-only folder beside `final`, renamed to `final` only when the block
    ends well: all or nothing. Any failure (or cancel) removes it with everything in it,
    and the parent folders this created for it. `final` must not exist, or be an empty
    folder (which the rename replaces); one with anything in it makes the rename fail."""
    created = []
    parent = final.parent
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    final.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _remove_abandoned_folders_of(final)
    staging = temporary_path_for(final)
    try:
        staging.mkdir(mode=DIR_MODE)
        yield staging
        fsync_directory(staging)
        os.rename(staging, final)
        fsync_directory(final.parent)
    except BaseException as error:
        if staging.exists():
            _remove_tree(staging)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OSError) and error.filename in (str(staging), staging):
            error.filename = str(final)  # said of the folder the operator named
        raise
