"""The catalog's one SQLite connection: file permissions, pragmas, transactions.

Several processes share the file (console, headless scheduler, CLI). WAL lets
readers run beside the single writer; writes take the write lock up front with
BEGIN IMMEDIATE, so waiting happens in the busy handler instead of failing
later with SQLITE_BUSY when a read transaction tries to upgrade.
"""

import contextlib
import os
import random
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engines.catalog.schema import migrate
from engines.errors import CatalogUnreadableError, InsufficientSpaceError, JarvisError
from engines.plumbing.fsutil import FILE_MODE, ensure_private_dir

T = TypeVar("T")

NEARLY_FULL_BYTES = 64 * 1024  # below this, a failed write is taken for a full disk


# Closing any descriptor of a file drops every fcntl lock this process holds on it,
# those of SQLite connections already open included; another process would then take
# the catalog for unused and delete -wal and -shm under them. So outside SQLite the
# catalog file is opened only to create it when it is missing (a new inode no
# connection can hold a lock on), under a lock every open in this process takes first.
_CREATING = threading.Lock()
_PRIVATE_SUFFIXES = ("", "-wal", "-shm")


def _new_lock_after_fork() -> None:
    # A child forked while another thread held the lock would otherwise never open a catalog.
    global _CREATING
    _CREATING = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def catalog_files(path: Path) -> list[Path]:
    """The catalog's file and SQLite's journals beside it: what a backup of the folder
    that holds them must never open (reading one in a process with the catalog open
    would drop that process's locks on it when closed)."""
    return [Path(f"{path}{suffix}") for suffix in (*_PRIVATE_SUFFIXES, "-journal")]


def _prepare_private_file(path: Path) -> None:
    """Create the database file owner-only when missing; SQLite gives -wal and -shm its mode."""
    with _CREATING:
        try:
            if not path.parent.exists():
                ensure_private_dir(path.parent)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
            except FileExistsError:
                pass
            else:
                os.close(fd)
            for suffix in _PRIVATE_SUFFIXES:
                _make_private(Path(f"{path}{suffix}"))
        except OSError as exc:
            raise JarvisError(
                f"cannot create catalog {path} ({exc.strerror}); check BACKUP_CATALOG_PATH "
                "and the permissions of its folder"
            ) from None


def _make_private(path: Path) -> None:
    """chmod by path: it opens no descriptor, so it cannot drop a lock."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & ~FILE_MODE:
        os.chmod(path, FILE_MODE)


def _disk_full(path: Path, exc: sqlite3.Error) -> InsufficientSpaceError | None:
    """SQLITE_FULL, or an I/O error (creating -shm, say) on a disk with no room left."""
    if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
        try:
            stats = os.statvfs(path.parent)
        except OSError:
            return None
        if stats.f_bavail * stats.f_frsize >= NEARLY_FULL_BYTES:
            return None
    return InsufficientSpaceError(
        f"catalog {path}: its disk is full; free space there (or move BACKUP_CATALOG_PATH "
        "to a larger disk) and run again"
    )


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


def _retry_while_busy(step: Callable[[], T], busy_timeout_ms: int) -> T:
    """Run `step`, retrying SQLITE_BUSY until the busy timeout.

    SQLite skips the busy handler where waiting could deadlock, e.g. two new
    connections both switching a fresh file to WAL; one of them must retry.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(0.005, 0.05))


def _configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    # Switching to WAL needs an exclusive lock; skip it when another process already did.
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise JarvisError(f"could not switch the catalog to WAL mode (still {mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def _busy_error(path: Path, busy_timeout_ms: int) -> JarvisError:
    return JarvisError(
        f"catalog {path} stayed locked by another process for {busy_timeout_ms} ms; "
        "try again when the running job has finished"
    )


class Database:
    """A locked connection: `write()` for transactions, `rows()`/`row()` for reads."""

    def __init__(self, path: Path, *, busy_timeout_ms: int):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.RLock()
        self._pid = os.getpid()
        _prepare_private_file(path)
        try:
            self._conn = sqlite3.connect(
                path,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _disk_full(path, exc) or JarvisError(
                f"cannot open catalog {path}: {exc}"
            ) from exc
        self._conn.row_factory = sqlite3.Row
        try:
            _retry_while_busy(lambda: _configure(self._conn, busy_timeout_ms), busy_timeout_ms)
            self.schema_version = _retry_while_busy(
                lambda: migrate(self._conn, str(path)), busy_timeout_ms
            )
        except sqlite3.OperationalError as exc:
            self._conn.close()
            if _is_busy(exc):
                raise _busy_error(path, busy_timeout_ms) from exc
            raise _disk_full(path, exc) or JarvisError(
                f"cannot open catalog {path}: {exc}"
            ) from exc
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise CatalogUnreadableError(
                f"catalog {path} is unreadable ({exc}); move it aside and run "
                "`jarvis-tui catalog rebuild` to recreate it from the repository",
                path,
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    def _connection(self) -> sqlite3.Connection:
        # A connection carried across fork() would corrupt SQLite's locking.
        if os.getpid() != self._pid:
            raise RuntimeError("this Catalog was opened by another process; open a new one here")
        return self._conn

    @contextlib.contextmanager
    def _sqlite_errors_as_jarvis_errors(self) -> Iterator[None]:
        """Code above the catalog never needs sqlite3 to catch the catalog's failures."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise _busy_error(self.path, self.busy_timeout_ms) from exc
            raise _disk_full(self.path, exc) or JarvisError(f"catalog {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise JarvisError(f"catalog {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken at BEGIN."""
        with self._lock, self._sqlite_errors_as_jarvis_errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock, self._sqlite_errors_as_jarvis_errors():
            return self._connection().execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock, self._sqlite_errors_as_jarvis_errors():
            return self._connection().execute(sql, params).fetchone()

    def close(self) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                self._conn.close()
