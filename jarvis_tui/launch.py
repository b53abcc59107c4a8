"""The `jarvis-tui` executable: answers wal-push and wal-fetch from the WAL workers'
results when it can (engines/pitr/wal_push_queue.py, wal_spools.py) before the whole
program is imported, and hands every other command line to jarvis_tui.cli. Where it is
installed (jarvis_executable) is what archive_command and restore_command name.

PostgreSQL runs these two once per WAL segment; this path costs an interpreter's start
and one rename instead of a fifth of a second of imports.
"""

import sys
from pathlib import Path

from engines.pitr.wal_push_queue import pushed_at_once
from engines.pitr.wal_spools import take_prefetched


def answered_at_once(words: list[str]) -> bool:
    env_file = None
    if words[:1] == ["--env-file"]:
        env_file, words = (words[1] if len(words) > 1 else None), words[2:]
    if len(words) == 2 and words[0] == "wal-push":
        return pushed_at_once(Path(words[1]), env_file)
    if len(words) == 3 and words[0] == "wal-fetch" and not words[1].startswith("-"):
        return take_prefetched(words[1], Path(words[2]))
    return False


def jarvis_executable() -> str:
    """This jarvis-tui, by absolute path, for the commands PostgreSQL runs
    (archive_command, restore_command): its PATH is not ours."""
    import shutil  # here: the fast path above does not need it

    beside = Path(sys.executable).parent / "jarvis-tui"
    return str(beside) if beside.is_file() else shutil.which("jarvis-tui") or "jarvis-tui"


def main() -> int:
    if answered_at_once(sys.argv[1:]):
        return 0
    from jarvis_tui.cli import main as run_command_line

    return run_command_line()


if __name__ == "__main__":
    sys.exit(main())
