"""`pitr setup` and `pitr check`: the server settings that send WAL through wal-push,
and a forced segment switch whose segment must then arrive in the archive.

`wal_level` and `archive_mode` take effect only at a restart; `archive_command` and
`archive_timeout` at a reload, which `--apply` does.
"""

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from engines.destinations import Destination
from engines.errors import JarvisError
from engines.pitr.archive_layout import candidate_keys
from engines.pitr.archive_store import find_key
from engines.pitr.cluster import ClusterIdentity, from_connection
from engines.pitr.wal_files import parse_name

RESTART_SETTINGS = {"wal_level": ("replica", "logical"), "archive_mode": ("on", "always")}
POLL_S = 0.2


class ArchivingCheckError(JarvisError):
    """The switched segment did not reach the archive in time."""


def archive_command(executable: str, env_file: Path | None) -> str:
    """`jarvis-tui [--env-file F] wal-push %p`: the env file named so the archiver, whose
    environment is PostgreSQL's, finds the settings."""
    return _jarvis(executable, env_file, "wal-push") + " %p"


def restore_command(executable: str, env_file: Path | None) -> str:
    """`jarvis-tui [--env-file F] wal-fetch %f %p`, built as archive_command is."""
    return _jarvis(executable, env_file, "wal-fetch") + " %f %p"


def _jarvis(executable: str, env_file: Path | None, verb: str) -> str:
    words = [executable] + (["--env-file", str(env_file.absolute())] if env_file else [])
    return shlex.join([*words, verb])


def archive_settings(command: str, timeout_s: int) -> dict[str, str]:
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": command,
        "archive_timeout": f"{timeout_s}s",
    }


def apply_settings(conn: psycopg.Connection, wanted: dict[str, str]) -> list[str]:
    """ALTER SYSTEM each setting and reload; the settings still waiting for a restart."""
    for name, value in wanted.items():
        statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
            sql.Identifier(name), sql.Literal(value)
        )
        conn.execute(statement)
    conn.execute("SELECT pg_reload_conf()")
    waiting = []
    for name, running in RESTART_SETTINGS.items():
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        if row is None or row[0] not in running:
            waiting.append(name)
    return waiting


@dataclass(frozen=True)
class CheckResult:
    segment: str
    key: str
    seconds: float
    cluster: ClusterIdentity


def check_archiving(
    conn: psycopg.Connection, repository: Destination, timeout_s: float
) -> CheckResult:
    """Switch to a new segment and wait (at most `timeout_s`) until it is in the archive."""
    row = conn.execute("SELECT current_setting('archive_mode')").fetchone()
    if row is None or row[0] == "off":
        raise ArchivingCheckError(
            "archiving is off on this server (archive_mode=off); run `jarvis-tui pitr setup "
            "--apply` and restart PostgreSQL"
        )
    cluster = from_connection(conn)
    # A restore point makes sure the segment has a record, so the switch always happens.
    conn.execute("SELECT pg_create_restore_point('jarvis pitr check')")
    found = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert found is not None
    name = parse_name(found[0])
    keys = candidate_keys(cluster.system_id, name)
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < timeout_s:
        key = find_key(repository, keys)
        if key is not None:
            return CheckResult(name.name, key, elapsed, cluster)
        time.sleep(POLL_S)
    failed = conn.execute("SELECT last_failed_wal, failed_count FROM pg_stat_archiver").fetchone()
    hint = (
        f"; the archiver's last failure was {failed[0]} ({failed[1]} failures so far): see "
        "the PostgreSQL log for wal-push's message"
        if failed and failed[0]
        else "; check archive_command (`jarvis-tui pitr setup`) and the PostgreSQL log"
    )
    raise ArchivingCheckError(
        f"segment {name.name} did not reach the archive within {timeout_s:g} s{hint}"
    )
