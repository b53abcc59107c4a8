"""Processes: is one still there (to tell abandoned work from work in progress), and
the pipes we stream through to and from them."""

import contextlib
import fcntl
import os
from datetime import datetime
from pathlib import Path
from typing import Any

# A pid names a process only while it runs; its start time (clock ticks since boot, from
# /proc/PID/stat) tells the process that wrote something from a later one given the same pid.
_BOOT_SLACK_S = 2.0


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


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_token(pid: int | None = None) -> str:
    """The start time of `pid` (default: this process) in clock ticks since boot, as
    digits; "0" where it cannot be read (then only the pid is compared)."""
    fields = _stat_fields(os.getpid() if pid is None else pid)
    token = fields[19] if fields and len(fields) > 19 else ""
    return token if token.isdigit() else "0"


def owner_token() -> str:
    """`<pid>-<start>`: names this process in temporaries, folders and scratch databases."""
    return f"{os.getpid()}-{process_start_token()}"


def process_started_at(pid: int) -> float | None:
    """Wall-clock start of `pid` in seconds since the epoch, None when unknown."""
    token = process_start_token(pid)
    try:
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    if token == "0":
        return None
    return boot + int(token) / os.sysconf("SC_CLK_TCK")


def owner_gone(pid: int, start: str | None = None, *, last_change: float | None = None) -> bool:
    """True when the process that made something is no longer running: its pid is dead, or
    is now another process (a different start token, or one started after the thing was
    last changed, `last_change` in seconds since the epoch)."""
    if pid == os.getpid():
        return bool(start) and start != "0" and start != process_start_token()
    if not process_alive(pid):
        return True
    if start and start != "0":
        current = process_start_token(pid)
        return current != "0" and current != start
    if last_change is not None:
        started = process_started_at(pid)
        return started is not None and started > last_change + _BOOT_SLACK_S
    return False


def job_process_gone(pid: int, started_at: datetime | None) -> bool:
    """True when the process that started a job at `started_at` no longer runs: a job's
    row is written by its process once running, so a process under that pid started later
    is another one (the pid reused, after a reboot or a long while)."""
    last_change = None if started_at is None else started_at.timestamp()
    return owner_gone(pid, last_change=last_change)


_F_SETPIPE_SZ = 1031


def widen_pipe(fd: int, size: int) -> None:
    """Linux: a bigger pipe means fewer wake-ups between a process and us."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
