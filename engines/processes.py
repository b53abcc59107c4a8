"""Processes: is one still there (to tell abandoned work from work in progress), and
the pipes we stream through to and from them."""

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any


def process_alive(pid: Any) -> bool:
    """True while `pid` runs on this host (a zombie awaiting its parent counts as gone)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child its parent has not reaped yet still answers signal 0.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


_F_SETPIPE_SZ = 1031


def widen_pipe(fd: int, size: int) -> None:
    """Linux: a bigger pipe means fewer wake-ups between a process and us."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
