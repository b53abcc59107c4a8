"""The two folders beside PostgreSQL's own WAL through which wal-push and wal-fetch answer
at once, and wal-fetch's answer (the launcher's fast path, which imports nothing else;
wal-push's is wal_push_queue.take_acknowledgement).

PostgreSQL calls archive_command and restore_command once per segment and waits for
each; a Python start-up with the whole program is about 0.2 s, too slow for a busy
server or a long recovery. So a long-running worker does the work ahead (pgBackRest's
archive-async) and these folders, inside `pg_wal/` (which base backups leave out), carry
its results:

- `pg_wal/jarvis-push/<name>.ok`: the worker stored `<name>` in the repository and every
  copy destination; wal-push consumes the mark and succeeds. `<name>.error` holds the
  worker's one-line reason instead. Only what is stored is ever acknowledged.
- `pg_wal/jarvis-fetch/<name>`: the worker fetched `<name>`, authenticated it and checked
  it is this cluster's file of that name; wal-fetch moves it into place, waiting for it
  while `.<name>.part` shows it on its way.
"""

import os
import time
from pathlib import Path

from engines.pitr.wal_worker import worker_running

PUSH_FOLDER = "jarvis-push"
FETCH_FOLDER = "jarvis-fetch"
ACKNOWLEDGED = ".ok"
FAILED = ".error"
COMING = ".part"
COMING_WAIT_S = 30.0
COMING_POLL_S = 0.005


def push_folder(pg_wal: Path) -> Path:
    return pg_wal / PUSH_FOLDER


def fetch_folder(pg_wal: Path) -> Path:
    return pg_wal / FETCH_FOLDER


def coming(folder: Path, name: str) -> Path:
    """Where the fetch worker writes `name` until it is whole (it exists from the start of
    that fetch to its end, so a call can wait for a segment already on its way)."""
    return folder / f".{name}{COMING}"


def take_prefetched(name: str, dest: Path, wait_s: float = COMING_WAIT_S) -> bool:
    """wal-fetch's fast path: True when the worker had `name` ready, or had it on its way
    and finished it within `wait_s`, and it is now at `dest` (moved, never copied: the
    same file system, and whole or not at all). Only while a worker holds the folder:
    its files are written without fsync, so what a crash or a killed worker left is never
    handed out (the next worker removes it)."""
    folder = fetch_folder(dest.parent)
    if not worker_running(folder):
        return False
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.rename(folder / name, dest)
        except OSError:
            if not coming(folder, name).exists() or time.monotonic() > deadline:
                return False
            time.sleep(COMING_POLL_S)
            continue
        return True
