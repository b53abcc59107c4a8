"""What the asynchronous wal-push shares in `pg_wal/`: PostgreSQL's own queue (the
`archive_status/<name>.ready` files it keeps until wal-push succeeded), and the worker's
marks in `pg_wal/jarvis-push/` (engines/pitr/wal_spools.py), where it also holds its lock
(engines/pitr/wal_worker.py) with the settings it pushes with.

The `.ready` files are the only queue: nothing is copied aside, so nothing can be dropped
or go stale; a mark only says what the worker did with a name PostgreSQL still asks for.
"""

import os
import time
from pathlib import Path

from engines.pitr.wal_spools import ACKNOWLEDGED, FAILED, push_folder
from engines.pitr.wal_worker import holder_identity, worker_running

STATUS_FOLDER = "archive_status"
READY = ".ready"
WANTED_NAME = "wanted"  # the settings the callers push with, when a worker runs with others
_TEMPORARY = ".tmp-"
# How long the launcher waits on a running worker before handing the call to the program
# (whose wait is bounded by BACKUP_WAL_PUSH_TIMEOUT, and which reports an `.error`).
LAUNCHER_WAIT_S = 5.0
LAUNCHER_POLL_S = 0.02
DEFAULT_SETTINGS = "-"  # no --env-file: the settings found the default way


def env_identity(env_file: str | os.PathLike[str] | None) -> str:
    """Which settings a worker pushes with, as its `.ok` marks say: the env file's absolute
    path (the worker runs in its caller's folder), else DEFAULT_SETTINGS."""
    return os.path.abspath(env_file) if env_file else DEFAULT_SETTINGS


def take_acknowledgement(path: Path, identity: str) -> bool:
    """wal-push's fast path: True when the worker had stored the file at `path` with the
    caller's settings; the mark is consumed, so each acknowledgement answers one call.
    Once archive_command names another env file (another repository), a worker still
    running with the old one has stored nothing for this call. (An empty mark is taken.)"""
    mark = push_folder(path.parent) / (path.name + ACKNOWLEDGED)
    try:
        if mark.read_text().strip() not in ("", identity):
            return False
        mark.unlink()
    except OSError:
        return False
    return True


def pushed_at_once(path: Path, env_file: str | None) -> bool:
    """The launcher's answer to `wal-push [--env-file F] PATH`."""
    identity = env_identity(env_file)
    return take_acknowledgement(path, identity) or acknowledged_soon(path, identity)


def queued(path: Path) -> bool:
    """True when PostgreSQL's archiver waits for `path` (its `.ready` file exists): only
    then can the worker, which reads those files, be the one to push it."""
    return (path.parent / STATUS_FOLDER / (path.name + READY)).is_file()


def ready_names(pg_wal: Path) -> list[str]:
    """The names waiting, in the archiver's own order: timeline history files first, then
    the oldest. Raises FileNotFoundError when the folder is gone (the cluster was removed)."""
    with os.scandir(pg_wal / STATUS_FOLDER) as entries:
        names = [e.name[: -len(READY)] for e in entries if e.name.endswith(READY)]
    return sorted(names, key=lambda name: (not name.endswith(".history"), name))


def marked_names(pg_wal: Path) -> set[str]:
    """Names with an `.ok` or `.error` mark."""
    try:
        with os.scandir(push_folder(pg_wal)) as entries:
            found = [e.name for e in entries if _TEMPORARY not in e.name]
    except FileNotFoundError:
        return set()
    return {
        name[: -len(suffix)]
        for name in found
        for suffix in (ACKNOWLEDGED, FAILED)
        if name.endswith(suffix)
    }


def remove_marks(pg_wal: Path, name: str) -> None:
    for suffix in (ACKNOWLEDGED, FAILED):
        (push_folder(pg_wal) / (name + suffix)).unlink(missing_ok=True)


def write_mark(pg_wal: Path, name: str, suffix: str, text: str = "") -> None:
    """`<name><suffix>` whole or not at all (written aside, then renamed)."""
    final = push_folder(pg_wal) / (name + suffix)
    temporary = final.with_name(f".{final.name}{_TEMPORARY}{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, final)


def take_failure(path: Path) -> str | None:
    """The worker's reason for failing to store `path`, consumed (each answers one call)."""
    mark = push_folder(path.parent) / (path.name + FAILED)
    try:
        reason = mark.read_text().strip()
        mark.unlink()
    except FileNotFoundError:
        return None
    return reason or "no reason recorded"


def remove_leftovers(pg_wal: Path, identity: str) -> None:
    """Marks half-written by a worker that died, and `.ok` marks of a worker that ran with
    other settings (their names are pushed again); only the lock's holder may call this."""
    for leftover in push_folder(pg_wal).glob(f".*{_TEMPORARY}*"):
        leftover.unlink(missing_ok=True)
    for mark in push_folder(pg_wal).glob(f"*{ACKNOWLEDGED}"):
        try:
            foreign = mark.read_text().strip() not in ("", identity)
        except FileNotFoundError:
            continue
        if foreign:
            mark.unlink(missing_ok=True)


def want(pg_wal: Path, identity: str) -> None:
    """Ask a worker running with other settings to end (it reads this at every scan)."""
    write_mark(pg_wal, WANTED_NAME, "", identity + "\n")


def unwanted(pg_wal: Path, identity: str) -> bool:
    """True when callers asked for a worker with other settings than `identity`."""
    try:
        wanted = (push_folder(pg_wal) / WANTED_NAME).read_text().strip()
    except FileNotFoundError:
        return False
    return wanted not in ("", identity)


def acknowledged_soon(path: Path, identity: str) -> bool:
    """The launcher's wait, without importing the program: True once the running worker
    acknowledged `path`. False at once when `path` is not queued or no worker runs (the
    program starts one), on an `.error` (the program reports it) or after LAUNCHER_WAIT_S.
    Keeps a busy server's calls at an interpreter's start each while the worker is ahead
    of them only by a little."""
    if not queued(path):
        return False
    folder = push_folder(path.parent)
    failed = folder / (path.name + FAILED)
    give_up_at = time.monotonic() + LAUNCHER_WAIT_S
    polls = 0
    while time.monotonic() < give_up_at:
        if take_acknowledgement(path, identity):
            return True
        if failed.exists():
            return False
        if polls % 10 == 0 and not (worker_running(folder) and queued(path)):
            return False
        if polls == 0 and holder_identity(folder) not in (None, identity):
            return False  # a worker with other settings: the program asks it to end
        polls += 1
        time.sleep(LAUNCHER_POLL_S)
    return False
