"""wal-push's slow path when archiving is asynchronous (BACKUP_WAL_ASYNC): the file is
PostgreSQL's next `.ready` one, so the worker (engines/pitr/wal_push_worker.py) is the
one to push it; this call makes sure a worker runs and waits for its mark.

The fast path (jarvis_tui/launch.py) answers when the `.ok` is already there; this one
reports a waiting `.error` (so PostgreSQL retries), else starts a worker when none holds
the lock (again should one end, or die, while waiting) and polls for the mark, bounded by
BACKUP_WAL_PUSH_TIMEOUT.
"""

import time
from collections.abc import Callable
from pathlib import Path

from engines.config import Settings
from engines.errors import JarvisError
from engines.pitr.wal_deadline import WalTimeoutError
from engines.pitr.wal_push_queue import queued, take_acknowledgement, take_failure, want
from engines.pitr.wal_spools import push_folder
from engines.pitr.wal_worker import holder_identity, worker_running

POLL_S = 0.02
PROBE_EVERY_S = 0.5
# A worker's start-up (imports, then the lock) takes a moment: not started again sooner.
START_AGAIN_S = 2.0


class WalPushFailedError(JarvisError):
    """The worker could not store the file; its reason is in the message."""


def hand_over(
    settings: Settings, path: Path, identity: str, start_worker: Callable[[Path], None]
) -> bool:
    """True once the worker running with the settings `identity` names (env_identity)
    stored `path`; False when PostgreSQL no longer waits for it (its `.ready` is gone: a
    second call for the file, e.g. by hand, whose answer the archiver's call took), for the
    caller to push it itself; raise WalPushFailedError with the worker's
    reason, or WalTimeoutError when no mark came within BACKUP_WAL_PUSH_TIMEOUT."""
    pg_wal = path.absolute().parent
    marks = push_folder(pg_wal)
    timeout = settings.backup_wal_push_timeout
    give_up_at = time.monotonic() + timeout
    probe_at = 0.0
    while True:
        if take_acknowledgement(path, identity):
            return True
        reason = take_failure(path)
        if reason is not None:
            raise WalPushFailedError(
                f"wal-push {path.name}: the background worker could not store it: {reason}; "
                "PostgreSQL keeps the file and tries again"
            )
        now = time.monotonic()
        if now >= give_up_at:
            raise WalTimeoutError(
                f"wal-push {path.name}: the background worker did not store it within "
                f"{timeout} s (BACKUP_WAL_PUSH_TIMEOUT); PostgreSQL will try again"
            )
        if now >= probe_at:
            if not queued(path):
                return False
            if worker_running(marks):
                if holder_identity(marks) not in (None, identity):
                    want(pg_wal, identity)  # it ends at its next scan; ours starts then
                probe_at = now + PROBE_EVERY_S
            else:
                start_worker(pg_wal)
                probe_at = now + START_AGAIN_S
        time.sleep(POLL_S)
