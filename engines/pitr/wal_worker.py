"""What the long-running WAL workers share: a start detached from the PostgreSQL command
that starts them (which must not wait for them), and one worker per folder, held by a
lock file in it that the kernel releases however the worker ends.

A command that wants a worker asks `worker_running` first and starts one only if none
holds the lock; should two start at once, the second finds the lock held and ends.
Imported by the launcher's fast path: nothing heavy at module level.
"""

import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = "worker.lock"
# A probe (worker_running) holds the lock for a moment: a worker starting just then
# tries again before concluding that another worker has it.
LOCK_TRIES = 10
LOCK_RETRY_S = 0.1


def start_detached(argv: list[str]) -> None:
    """Run `argv` in a session of its own with no terminal and stdio on /dev/null:
    PostgreSQL's wait for restore_command or archive_command ends with the caller."""
    import subprocess  # here: the launcher's fast path imports this module and stays light

    subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )  # fmt: skip


def hold_lock(folder: Path, identity: str | None = None) -> int | None:
    """An open descriptor holding `folder`'s worker lock (keep it for the process's life),
    or None when another worker holds it. The holder's pid is written into the file, and
    after it `identity` when given (the settings the push worker runs with)."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    for attempt in range(LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if attempt + 1 < LOCK_TRIES:
                time.sleep(LOCK_RETRY_S)
            continue
        os.ftruncate(fd, 0)
        holder = f"{os.getpid()} {identity}" if identity else str(os.getpid())
        os.write(fd, f"{holder}\n".encode())
        return fd
    os.close(fd)
    return None


def holder_identity(folder: Path) -> str | None:
    """The identity the lock's holder (or its last holder) wrote, if any."""
    try:
        words = (folder / LOCK_NAME).read_text().split(maxsplit=1)
    except FileNotFoundError:
        return None
    return words[1].strip() if len(words) == 2 else None


def worker_running(folder: Path) -> bool:
    """True while a worker holds `folder`'s lock."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False
