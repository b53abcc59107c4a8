"""Writing below a restore target without ever following a symlink inside it.

Every folder below the target root is opened relative to its parent with
O_NOFOLLOW | O_DIRECTORY, so neither a symlink from the snapshot nor one that
already exists in the target (or appears during the restore) can carry a write
outside the target. Files are written to a temporary name and renamed over the
old one, so an interrupted restore never leaves a half-written file in place.
"""

import contextlib
import itertools
import os
import re
import secrets
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from engines.errors import JarvisError
from engines.plumbing.processes import owner_gone, owner_token
from engines.store.snapshots import shown

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_CACHED_FOLDERS = 128
WRITE_BLOCK = 1 << 20


class BlockedPathError(JarvisError):
    """A folder on the way to an entry is a symlink or not a folder."""


def _new_process_token() -> str:
    # The owner (pid and start time) lets a later restore tell an abandoned temporary
    # from one a running restore is still writing.
    return f"{owner_token()}-{secrets.token_hex(4)}"


_process_token = [_new_process_token()]
os.register_at_fork(after_in_child=lambda: _process_token.__setitem__(0, _new_process_token()))
_numbers = itertools.count()
# `.NAME.jarvis-restore-PID-START-RANDOM-N`, or `.jarvis-restore-...` for a long NAME;
# temporaries of older versions carry no START.
_TEMPORARY = re.compile(r"\.(?:.+\.)?jarvis-restore-(\d+)-(?:(\d+)-)?[0-9a-f]{8}-\d+", re.S)


def temporary_name(name: str) -> str:
    # Unique per process and call without a syscall per file (O_EXCL guards collisions).
    token = f"{_process_token[0]}-{next(_numbers)}"
    if len(os.fsencode(name)) > 200:
        return f".jarvis-restore-{token}"
    return f".{name}.jarvis-restore-{token}"


class TargetTree:
    def __init__(self, root: Path):
        self.root = root
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._folders: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._missing: set[tuple[str, ...]] = set()  # folders found absent, until created
        # Restore workers share the cache: an evicted descriptor must never be closed
        # between another thread's lookup and its dup.
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._close_all()

    def _close_all(self) -> None:
        while self._folders:
            _, fd = self._folders.popitem()
            os.close(fd)
        os.close(self._root_fd)

    def __enter__(self) -> "TargetTree":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def display(self, parts: Sequence[str]) -> str:
        return shown(str(self.root.joinpath(*parts)))

    def folder(self, parts: Sequence[str], *, create: bool) -> int:
        """A new descriptor (the caller closes it) for the folder `parts` below the root."""
        with self._lock:
            return os.dup(self._folder(tuple(parts), create))

    def _folder(self, parts: tuple[str, ...], create: bool) -> int:
        if not parts:
            return self._root_fd
        if parts in self._folders:
            self._folders.move_to_end(parts)
            return self._folders[parts]
        parent = self._folder(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                self._missing.add(parts)
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except PermissionError:
            raise
        except OSError:  # ELOOP for a symlink, ENOTDIR for anything else
            info = os.lstat(name, dir_fd=parent)
            what = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a folder"
            raise BlockedPathError(
                f"{self.display(parts)} is {what}; refusing to write through it"
            ) from None
        self._folders[parts] = fd
        self._missing.discard(parts)
        if len(self._folders) > MAX_CACHED_FOLDERS:
            _, old = self._folders.popitem(last=False)
            os.close(old)
        return fd

    def lstat(self, parts: Sequence[str]) -> os.stat_result | None:
        """The entry at `parts`, or None; BlockedPathError if a folder on the way is not one."""
        with self._lock:
            folder = tuple(parts[:-1])
            if any(folder[:depth] in self._missing for depth in range(1, len(folder) + 1)):
                return None  # a folder on the way is known to be absent
            try:
                parent = self._folder(folder, create=False)
            except FileNotFoundError:
                return None
            try:
                return os.lstat(parts[-1], dir_fd=parent)
            except FileNotFoundError:
                return None


def remove_abandoned_temporaries(tree: TargetTree, folders: Iterable[Sequence[str]]) -> int:
    """Delete, in each of `folders` that exists below the tree, the temporaries a killed
    restore left behind (their owner process is gone); return how many went.

    Only the restore's own temporaries (by name, files and symlinks) are touched, and a
    folder that is a symlink is never entered.
    """
    removed = 0
    for parts in sorted({tuple(folder) for folder in folders}):
        try:
            fd = tree.folder(parts, create=False)
        except (FileNotFoundError, NotADirectoryError, BlockedPathError):
            continue
        try:
            for name in os.listdir(fd):
                removed += _remove_if_abandoned(fd, name)
        finally:
            os.close(fd)
    return removed


def _remove_if_abandoned(folder_fd: int, name: str) -> int:
    match = _TEMPORARY.fullmatch(name)
    if match is None:
        return 0
    try:
        info = os.lstat(name, dir_fd=folder_fd)
    except FileNotFoundError:
        return 0
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        return 0
    if not owner_gone(int(match[1]), match[2], last_change=info.st_mtime):
        return 0  # another restore is writing it right now
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder_fd)
    return 1


def write_file(
    folder_fd: int,
    name: str,
    blocks: Iterable[bytes],
    *,
    apply: Callable[[int], None],
    durable: bool,
    mode: int = 0o600,
) -> int:
    """Write `blocks` into a temporary beside `name`, `apply` metadata, rename over `name`.

    The temporary is created with `mode` (less the umask). Returns the bytes
    written. On any error the temporary is removed and `name` is left as it was.
    """
    temporary = temporary_name(name)
    fd = os.open(temporary, _NEW_FILE_FLAGS, mode, dir_fd=folder_fd)
    written = 0
    try:
        try:
            for block in blocks:
                view = memoryview(block)
                while view:
                    count = os.write(fd, view[:WRITE_BLOCK])
                    view = view[count:]
                    written += count
            apply(fd)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder_fd)
        raise
    return written


def replace_symlink(folder_fd: int, name: str, target: str) -> None:
    temporary = temporary_name(name)
    os.symlink(target, temporary, dir_fd=folder_fd)
    try:
        os.rename(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder_fd)
        raise
