"""The long-running half of wal-push (pgBackRest's archive-async): one process per
`pg_wal/` pushes every file PostgreSQL marked `.ready`, a few at a time in threads, and
leaves a mark per file that the archiver's next wal-push call answers from at once.

- One worker per pg_wal: it holds the lock in `pg_wal/jarvis-push/` (wal_worker.py, with
  the settings it pushes with); a second one ends once it finds the lock held.
- `<name>.ok` is written only after push_wal returned, i.e. the file is stored in the
  repository and every copy destination; `<name>.error` holds the one-line reason
  otherwise. Marks whose `.ready` is gone are removed.
- Bounded: at most IN_FLIGHT_PER_THREAD files per thread are handed to the pool (each
  push reads its whole file); a push running longer than BACKUP_WAL_PUSH_TIMEOUT gets an
  `.error` and ends the worker (its thread cannot be stopped otherwise); the next wal-push
  starts a fresh one. Idle for IDLE_EXIT_S, or its pg_wal gone, it ends.
"""

import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from engines.config import Settings
from engines.pitr.settings_refresh import FreshSettings
from engines.pitr.wal_deadline import HARD_STOP_CODE
from engines.pitr.wal_push import push_wal
from engines.pitr.wal_push_queue import (
    marked_names,
    ready_names,
    remove_leftovers,
    remove_marks,
    unwanted,
    want,
    write_mark,
)
from engines.pitr.wal_spools import ACKNOWLEDGED, FAILED, push_folder
from engines.pitr.wal_worker import hold_lock
from engines.plumbing.os_errors import explain_os_error
from engines.plumbing.redaction import redact

IDLE_EXIT_S = 30.0
SCAN_INTERVAL_S = 0.02
IN_FLIGHT_PER_THREAD = 2
# After wal-push consumed an `.ok`, PostgreSQL renames the `.ready` a moment later: the
# name is not pushed again meanwhile (only should the `.ready` stay, as after a failed
# rename, is it pushed again; push_wal finds it stored and only says so).
RENAME_GRACE_S = 5.0


def failure_reason(error: BaseException) -> str:
    said = explain_os_error(error) if isinstance(error, OSError) else error
    return " ".join(redact(str(said) or type(error).__name__).split())


class _Worker:
    def __init__(self, settings: Settings, pg_wal: Path, identity: str) -> None:
        self.settings = FreshSettings(settings)  # a key rotated meanwhile reaches it
        self.pg_wal = pg_wal
        self.identity = identity
        self.timeout = settings.backup_wal_push_timeout
        threads = settings.backup_wal_push_processes
        self.capacity = threads * IN_FLIGHT_PER_THREAD
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="wal-push")
        self.in_flight: dict[str, Future[bool]] = {}
        self.started: dict[str, float] = {}  # name -> when its thread began the push
        self.acknowledged: dict[str, float] = {}
        self.lock = threading.Lock()

    def push(self, name: str) -> bool:
        with self.lock:
            self.started[name] = time.monotonic()
        try:
            push_wal(self.settings(), self.pg_wal / name, log=lambda _line: None)
        except Exception as error:  # any failure is the archiver's to retry
            write_mark(self.pg_wal, name, FAILED, failure_reason(error) + "\n")
            return False
        write_mark(self.pg_wal, name, ACKNOWLEDGED, self.identity + "\n")
        return True

    def step(self) -> bool:
        """One scan; False when there was nothing to do."""
        now = time.monotonic()
        for name, future in list(self.in_flight.items()):
            if future.done():
                del self.in_flight[name]
                with self.lock:
                    del self.started[name]
                if future.exception() is None and future.result():
                    self.acknowledged[name] = now
        self._end_if_stuck(now)
        ready = ready_names(self.pg_wal)
        marked = marked_names(self.pg_wal)
        waiting = set(ready)
        for name in marked - waiting:
            remove_marks(self.pg_wal, name)
        for name in set(self.acknowledged) - waiting:
            del self.acknowledged[name]
        todo = [
            name
            for name in ready
            if name not in marked
            and name not in self.in_flight
            and now - self.acknowledged.get(name, -RENAME_GRACE_S) >= RENAME_GRACE_S
        ]
        for name in todo[: self.capacity - len(self.in_flight)]:
            self.in_flight[name] = self.pool.submit(self.push, name)
        return bool(todo or self.in_flight)

    def _end_if_stuck(self, now: float) -> None:
        with self.lock:
            stuck = [name for name, began in self.started.items() if now - began > self.timeout]
        if not stuck:
            return
        reason = (
            f"storing it took longer than {self.timeout} s (BACKUP_WAL_PUSH_TIMEOUT), so the "
            "worker ended; nothing was left under its final name"
        )
        for name in stuck:
            write_mark(self.pg_wal, name, FAILED, reason + "\n")
        print(f"jarvis-tui: {', '.join(stuck)}: {reason}", file=sys.stderr, flush=True)
        os._exit(HARD_STOP_CODE)  # the stuck thread cannot be stopped any other way


def run_worker(
    settings: Settings, pg_wal: Path, identity: str, idle_exit_s: float = IDLE_EXIT_S
) -> int:
    """Push `pg_wal`'s ready files until idle, acknowledging them as pushed with the
    settings `identity` names; 0 also when another worker holds the lock."""
    push_folder(pg_wal).mkdir(mode=0o700, exist_ok=True)
    lock = hold_lock(push_folder(pg_wal), identity)
    if lock is None:
        return 0
    remove_leftovers(pg_wal, identity)
    want(pg_wal, identity)  # the caller that started it wants these settings
    worker = _Worker(settings, pg_wal, identity)
    idle_since = time.monotonic()
    try:
        while True:
            try:
                busy = worker.step()
            except FileNotFoundError:
                return 0  # pg_wal (or its archive_status) is gone: nothing to archive
            if unwanted(pg_wal, identity):
                return 0  # archive_command names other settings now: their worker follows
            now = time.monotonic()
            if busy:
                idle_since = now
            elif now - idle_since >= idle_exit_s:
                return 0
            time.sleep(SCAN_INTERVAL_S)
    finally:
        worker.pool.shutdown(wait=True)
        os.close(lock)
