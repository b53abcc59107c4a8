"""One writer per repository: an flock on `<root>/.lock` and a record of who holds it.

The kernel drops an flock when its holder dies, however it dies, so a lock
never outlives its process. The JSON record inside the file (pid, host,
purpose, start time) only tells others who is holding it; a record that is
still there when the flock is free was left by a holder that died.
"""

import errno
import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engines.errors import RepositoryLockedError
from engines.plumbing.fsutil import FILE_MODE, NO_SPACE, ensure_private_dir
from engines.plumbing.processes import process_alive

FORBIDDEN = frozenset({errno.EACCES, errno.EPERM})

LOCK_NAME = ".lock"
RECORD_LIMIT = 64 * 1024
# A new holder writes its record just after taking the flock; give it that long.
RECORD_GRACE_SECONDS = 0.5


class RepositoryLock:
    """`with RepositoryLock(root, "backup postgres"):` fails fast if another process holds it.

    After entering, `took_over_from` describes a holder that died without
    releasing the lock, or is None. With `reading_only` (a dry run) a repository on a
    read-only file system is read without the lock: nobody can change it meanwhile.
    """

    def __init__(
        self, root: Path, purpose: str, *, name: str = LOCK_NAME, reading_only: bool = False
    ) -> None:
        self.root = Path(root)
        self.purpose = purpose
        self.path = self.root / name
        self.reading_only = reading_only
        self.took_over_from: str | None = None
        self._fd: int | None = None
        self._on_read_only = False  # "held" without a lock file: nobody can write there
        self._writable = False  # False: the flock is held on a descriptor opened to read

    def __enter__(self) -> "RepositoryLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None or self._on_read_only

    def acquire(self) -> None:
        if self.held:
            raise RuntimeError(f"{self.path} is already held by this RepositoryLock")
        if not self.root.is_dir():
            ensure_private_dir(self.root)
        writable = True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as error:
            if self.reading_only and error.errno == errno.EROFS:
                self._on_read_only = True
                return
            if not (self.reading_only and error.errno in FORBIDDEN and self.path.exists()):
                raise
            # A reader of a repository it may not write (chmod a-w): flock works on a
            # descriptor opened to read, so writers are still kept out meanwhile.
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            writable = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _wait_for_record(fd)
            os.close(fd)
            raise RepositoryLockedError(_locked_message(self.path, holder), holder) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            leftover = _read_text(fd)
            self.took_over_from = _describe_leftover(leftover) if leftover else None
            if writable:
                _write_record(fd, self._record())
        except OSError as error:
            if error.errno not in NO_SPACE:
                os.close(fd)
                raise OSError(error.errno, error.strerror, str(self.path)) from error
            # A full disk: the record only tells others who holds the lock, and cleanup,
            # which frees the space, must still run. Hold the flock without it.
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._writable = writable

    def release(self) -> None:
        self._on_read_only = False
        if self._fd is None:
            return
        try:
            if self._writable:
                # An empty file tells the next holder that this one left cleanly.
                os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)
            self._fd = None

    def _record(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def read_holder(root: Path, *, name: str = LOCK_NAME) -> dict[str, Any] | None:
    """Who holds the repository lock, for status displays; None when it is free.

    Never takes the lock itself: even a brief shared lock here could make a
    backup starting at that moment fail.
    """
    try:
        text = (Path(root) / name).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    record = _parse(text)
    if record is None:
        return None
    if record.get("host") == socket.gethostname() and not process_alive(record.get("pid")):
        return None
    return record


def _read_text(fd: int) -> str:
    return os.pread(fd, RECORD_LIMIT, 0).decode(errors="replace").strip()


def _parse(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _wait_for_record(fd: int) -> dict[str, Any] | None:
    deadline = time.monotonic() + RECORD_GRACE_SECONDS
    while True:
        record = _parse(_read_text(fd))
        if record is not None or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def _write_record(fd: int, record: dict[str, Any]) -> None:
    # Rewritten in place: renaming a new file over the lock would leave this holder
    # locking an orphaned inode while the next process locks the new one.
    data = json.dumps(record).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _when(started_at: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(started_at)).astimezone(UTC)
    except ValueError:
        return str(started_at)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _holder_text(record: dict[str, Any]) -> str:
    host = record.get("host")
    where = "" if host == socket.gethostname() else f" on host {host}"
    purpose = record.get("purpose", "unknown purpose")
    return f"pid {record.get('pid')}{where} ({purpose}, started {_when(record.get('started_at'))})"


def _locked_message(path: Path, holder: dict[str, Any] | None) -> str:
    who = _holder_text(holder) if holder else "another process (it has not written who it is)"
    return (
        f"repository {path.parent} is locked by {who}; only one backup or cleanup runs at a "
        f"time: wait for it to finish, or check that process if it seems stuck (lock: {path})"
    )


def _describe_leftover(text: str) -> str:
    record = _parse(text)
    if record is None:
        return "an unknown holder that left an unreadable lock record"
    return f"{_holder_text(record)}, which ended without releasing the lock"
