"""A time bound for one archive or restore command: PostgreSQL's archiver and startup
process wait on it, so a stalled disk or network must end it rather than hang them.

At the deadline SIGALRM raises `WalTimeoutError` where the command is (a socket or a
file write returns to Python first); should that never come, a watchdog ends the
process a little later. Either way the exit is non-zero and PostgreSQL retries; no
temporary ever sits under a final name, since every write renames only when whole.
"""

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

from engines.errors import JarvisError

HARD_STOP_GRACE_S = 2
HARD_STOP_CODE = 124  # as timeout(1) says it


class WalTimeoutError(JarvisError):
    """The command ran out of its time (BACKUP_WAL_PUSH_TIMEOUT)."""


@contextlib.contextmanager
def deadline(seconds: int, what: str) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; the caller bounds its own threads
        return

    message = (
        f"{what} did not finish within {seconds} s (BACKUP_WAL_PUSH_TIMEOUT); nothing was "
        "left under its final name, PostgreSQL will try again"
    )

    def expired(signum: int, frame: object) -> None:
        raise WalTimeoutError(message)

    def hard_stop() -> None:
        # A thread that ignores the exception (an upload's worker waited on at exit).
        os.write(2, f"jarvis-tui: {message}\n".encode())
        os._exit(HARD_STOP_CODE)

    watchdog = threading.Timer(seconds + HARD_STOP_GRACE_S, hard_stop)
    watchdog.daemon = True
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    watchdog.start()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        watchdog.cancel()
