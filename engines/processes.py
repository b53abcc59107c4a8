"""Is a process still there? Used to tell abandoned work from work in progress."""

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
