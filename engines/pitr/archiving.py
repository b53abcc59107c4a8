"""Does this server archive its WAL into this repository through our wal-push? Read from
the server and the repository, never assumed from the settings: the scheduled base
backup (BACKUP_PITR_BASE_SCHEDULE) is taken only then, since a base backup whose WAL
is archived nowhere restores to no moment but its own end.

Yes when archive_mode is on (or always), no archive_library takes the archiver's place,
archive_command runs jarvis-tui's wal-push with %p, and this repository's archive
record names this server's cluster (wal-push's first segment or `pitr setup --apply`
writes it).
"""

import shlex

import psycopg

from engines.destinations import Destination
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_record import read_record
from engines.pitr.cluster import from_connection

PROGRAMS = ("jarvis-tui", "jarvis_tui.launch", "jarvis_tui.cli")


def runs_wal_push(command: str) -> bool:
    """Is `command` (archive_command) jarvis-tui's `wal-push %p`, however it is started
    (the installed executable, or `python -m jarvis_tui.launch`)?"""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    programs = [word for word in words if word.rsplit("/", 1)[-1] in PROGRAMS]
    return bool(programs) and "wal-push" in words and words[-1] == "%p"


def why_not_archiving_here(
    conn: psycopg.Connection, repository: Destination, keyring: Keyring
) -> str | None:
    """None when the server archives into `repository` through wal-push; else why not,
    in one clause."""
    mode, command, library = conn.execute(
        "SELECT current_setting('archive_mode'), current_setting('archive_command'), "
        "coalesce(current_setting('archive_library', true), '')"
    ).fetchone() or ("off", "", "")
    if mode not in ("on", "always"):
        return f"archiving is off on this server (archive_mode={mode})"
    if library:
        return f"the server archives through archive_library={library}, not wal-push"
    if not runs_wal_push(command):
        return "the server's archive_command is not jarvis-tui wal-push (see `pitr setup`)"
    record = read_record(repository, keyring)
    cluster = from_connection(conn)
    if record is None:
        return "nothing was archived into this repository yet (run `jarvis-tui pitr check`)"
    if record.system_id != cluster.system_id:
        return (
            f"this repository archives cluster {record.system_id}, not this server's "
            f"{cluster.system_id}"
        )
    return None
