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

PROGRAMS = ("jarvis-tui",)
MODULES = ("jarvis_tui.launch", "jarvis_tui.cli")
# A word holding one of these runs something else too (a list, pipe, redirection or
# substitution): the shell would not run wal-push alone, so the command is not ours.
SHELL_SYNTAX = (";", "&", "|", "<", ">", "`", "$(", "(", ")", "\n")


def runs_wal_push(command: str) -> bool:
    """Is `command` (archive_command) jarvis-tui's `wal-push %p` and nothing else, however
    it is started (the installed executable, `python -m jarvis_tui.launch`, behind `env`
    and variable assignments), with only --env-file before the verb?"""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if any(mark in word for word in words for mark in SHELL_SYNTAX):
        return False
    rest = _after_program(_after_environment(words))
    if rest is None:
        return False
    while rest[:1] == ["--env-file"] or (rest and rest[0].startswith("--env-file=")):
        rest = rest[1:] if "=" in rest[0] else rest[2:]
    return rest == ["wal-push", "%p"]


def _after_environment(words: list[str]) -> list[str]:
    """`env` and NAME=VALUE words that only set the program's environment, skipped."""
    if words[:1] == ["env"] or (words and words[0].endswith("/env")):
        words = words[1:]
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        words = words[1:]
    return words


def _after_program(words: list[str]) -> list[str] | None:
    """The words after jarvis-tui (or `python -m jarvis_tui.launch`); None for another
    program."""
    if not words:
        return None
    name = words[0].rsplit("/", 1)[-1]
    if name in PROGRAMS:
        return words[1:]
    if name.startswith("python") and words[1:2] == ["-m"] and words[2:3] and words[2] in MODULES:
        return words[3:]
    return None


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
