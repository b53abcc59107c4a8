"""The two folders beside PostgreSQL's own WAL through which wal-push and wal-fetch answer
at once, and the answers themselves (the launcher's fast paths, which import nothing else).

PostgreSQL calls archive_command and restore_command once per segment and waits for
each; a Python start-up with the whole program is about 0.2 s, too slow for a busy
server or a long recovery. So a long-running worker does the work ahead (pgBackRest's
archive-async) and these folders, inside `pg_wal/` (which base backups leave out), carry
its results:

- `pg_wal/jarvis-push/<name>.ok`: the worker stored `<name>` in the repository and every
  copy destination; wal-push consumes the mark and succeeds. `<name>.error` holds the
  worker's one-line reason instead. Only what is stored is ever acknowledged.
- `pg_wal/jarvis-fetch/<name>`: the worker fetched `<name>`, authenticated it and checked
  it is this cluster's file of that name; wal-fetch moves it into place.
"""

import os
from pathlib import Path

PUSH_FOLDER = "jarvis-push"
FETCH_FOLDER = "jarvis-fetch"
ACKNOWLEDGED = ".ok"
FAILED = ".error"


def push_folder(pg_wal: Path) -> Path:
    return pg_wal / PUSH_FOLDER


def fetch_folder(pg_wal: Path) -> Path:
    return pg_wal / FETCH_FOLDER


def take_acknowledgement(path: Path) -> bool:
    """wal-push's fast path: True when the worker had stored the file at `path` (its mark
    is consumed, so each acknowledgement answers one call)."""
    try:
        os.unlink(push_folder(path.parent) / (path.name + ACKNOWLEDGED))
    except OSError:
        return False
    return True


def take_prefetched(name: str, dest: Path) -> bool:
    """wal-fetch's fast path: True when the worker had `name` ready and it is now at
    `dest` (moved, never copied: the same file system, and whole or not at all)."""
    try:
        os.rename(fetch_folder(dest.parent) / name, dest)
    except OSError:
        return False
    return True
