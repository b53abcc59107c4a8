"""What PostgreSQL's archiver says of itself: `pg_stat_archiver` (archived and failed
counts, the last archived and last failed file with their times), `archive_mode`, and
how much WAL waits to be archived.

The WAL waiting is the `.ready` files of pg_wal/archive_status (and the oldest one's
time), which only superusers and `pg_monitor` members may list
(`pg_ls_archive_statusdir()`); for any other role it is unknown, and the distance from
the last archived segment to the one being written stands in for it.
"""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from engines.pitr.cluster import from_connection
from engines.pitr.wal_files import WalNameError, parse_name, segment_number


@dataclass(frozen=True)
class ArchiverState:
    archive_mode: str  # off, on, always
    archive_command: str
    in_recovery: bool
    system_id: int
    timeline: int
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    stats_reset: datetime | None
    ready_files: int | None  # None: this role may not list pg_wal/archive_status
    oldest_ready_at: datetime | None
    # Completed segments after the last archived one (from WAL positions): any role may
    # read them; None on a standby or when the last archived file is not a segment.
    segments_behind: int | None

    @property
    def archiving(self) -> bool:
        return self.archive_mode != "off"

    @property
    def archives_here(self) -> bool:
        """This server's archiver runs: a primary archiving, or a standby with `always`."""
        return self.archiving and (not self.in_recovery or self.archive_mode == "always")

    @property
    def failing(self) -> bool:
        """The last attempt failed: a failure newer than the last success."""
        if self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time

    @property
    def waiting(self) -> int | None:
        """WAL files waiting to be archived: the `.ready` files, else the estimate."""
        return self.ready_files if self.ready_files is not None else self.segments_behind


_ARCHIVER = (
    "SELECT archived_count, last_archived_wal, last_archived_time, failed_count, "
    "last_failed_wal, last_failed_time, stats_reset, current_setting('archive_mode'), "
    "current_setting('archive_command'), pg_is_in_recovery() FROM pg_stat_archiver"
)
_READY = (
    "SELECT count(*), min(modification) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
)
_POSITION = (
    "SELECT pg_walfile_name(pg_current_wal_lsn()), "
    "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')"
)


def read_archiver_state(conn: psycopg.Connection) -> ArchiverState:
    """The archiver's state on the server behind `conn` (an autocommit connection)."""
    row = conn.execute(_ARCHIVER).fetchone()
    assert row is not None
    archived, last_wal, last_time, failed, failed_wal, failed_time, reset = row[:7]
    mode, command, in_recovery = row[7:]
    cluster = from_connection(conn)
    ready, oldest = _ready_files(conn)
    behind = None if in_recovery else _segments_behind(conn, last_wal)
    return ArchiverState(
        mode, command, in_recovery, cluster.system_id, cluster.timeline,
        archived, last_wal, last_time, failed, failed_wal, failed_time, reset,
        ready, oldest, behind,
    )  # fmt: skip


def _ready_files(conn: psycopg.Connection) -> tuple[int | None, datetime | None]:
    try:
        row = conn.execute(_READY).fetchone()
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFunction):
        return None, None  # not a superuser nor pg_monitor; before PostgreSQL 12
    assert row is not None
    return int(row[0]), row[1]


def _segments_behind(conn: psycopg.Connection, last_archived: str | None) -> int | None:
    row = conn.execute(_POSITION).fetchone()
    assert row is not None
    current, size = row
    if last_archived is None:
        return None
    try:
        if parse_name(last_archived).kind != "segment" or last_archived[:8] != current[:8]:
            return None  # a .history/.backup file, or another timeline: no distance to tell
    except WalNameError:
        return None
    return max(0, segment_number(current, size) - segment_number(last_archived, size) - 1)
