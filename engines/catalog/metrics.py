"""Aggregates for `GET /metrics`: each one grouped query, so a scrape of a catalog with
10,000 sets returns a few rows per source, kind or channel instead of every set. What
other readers count too is theirs: the last good backups (MonitoringMixin, the
watchdog's) and a copy destination's backlog (StatsMixin.offsite_summary). "The
newest per group" is SQLite's MAX() with bare columns (they come from the row holding the
maximum): one aggregate pass where a window function sorts, 2-10x faster on 10,000 sets.

Job durations come as cumulative histogram buckets over every finished job: a job row is
never deleted, so the counts only grow (a rebuilt catalog reads as a counter reset).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from engines.catalog.db import Database
from engines.catalog.monitoring import LastGoodBackup
from engines.catalog.rows import ADDED_BYTES_SQL
from engines.catalog.times import parse_iso, parse_optional

_SECONDS = "(julianday(finished_at) - julianday(started_at)) * 86400.0"


@dataclass(frozen=True)
class LastSuccess:
    source: str
    set_id: str
    created_at: datetime
    added_bytes: int


@dataclass(frozen=True)
class JobDurations:
    """Finished jobs of one kind and final status: cumulative counts at each upper bound."""

    kind: str
    status: str
    buckets: tuple[int, ...]  # jobs that took at most bounds[i] seconds
    count: int
    sum_seconds: float


@dataclass(frozen=True)
class LastJob:
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class Verification:
    source: str
    state: str  # ok, failed, never
    artifacts: int
    last_verified_at: datetime | None


class MetricsMixin:
    _db: Database
    last_good_backups: Callable[[], dict[str, LastGoodBackup]]  # MonitoringMixin's

    def last_successes(self) -> list[LastSuccess]:
        """Per source, the watchdog's last good backup with what that source's complete
        artifacts in it added."""
        found = []
        for source, last in sorted(self.last_good_backups().items()):
            row = self._db.row(
                f"SELECT COALESCE(SUM({ADDED_BYTES_SQL}), 0) FROM artifacts AS a"
                " WHERE a.set_id = ? AND a.source = ? AND a.status = 'complete'",
                (last.set_id, source),
            )
            added = int(row[0]) if row else 0
            found.append(LastSuccess(source, last.set_id, last.created_at, added))
        return found

    def set_counts(self) -> dict[tuple[str, str], int]:
        """Sets by (kind, status)."""
        rows = self._db.rows("SELECT kind, status, COUNT(*) FROM backup_sets GROUP BY 1, 2")
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def last_set_statuses(self) -> dict[str, tuple[str, datetime]]:
        """Per set kind, the newest finished set's status and when it was started."""
        rows = self._db.rows(
            """
            SELECT kind, status, MAX(created_at) FROM backup_sets
            WHERE status != 'running' GROUP BY kind
            """
        )
        return {row[0]: (row[1], parse_iso(row[2])) for row in rows}

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (kind, status)."""
        rows = self._db.rows("SELECT kind, status, COUNT(*) FROM jobs GROUP BY 1, 2")
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def job_durations(self, bounds: Sequence[float]) -> list[JobDurations]:
        """Finished jobs per (kind, status) counted at each bound, in one pass."""
        counted = ", ".join("SUM(seconds <= ?)" for _ in bounds)
        # Materialized: each duration is worked out once, not once per bound.
        rows = self._db.rows(
            f"WITH finished AS MATERIALIZED (SELECT kind, status, {_SECONDS} AS seconds"
            " FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
            " AND started_at IS NOT NULL AND finished_at IS NOT NULL)"
            f" SELECT kind, status, COUNT(*), SUM(seconds), {counted} FROM finished GROUP BY 1, 2",
            [float(bound) for bound in bounds],
        )
        return [
            JobDurations(
                row[0],
                row[1],
                tuple(int(value or 0) for value in tuple(row)[4:]),
                int(row[2]),
                max(0.0, float(row[3] or 0.0)),
            )
            for row in rows
        ]

    def last_jobs(self) -> list[LastJob]:
        """Per job kind, the newest finished job."""
        rows = self._db.rows(
            """
            SELECT kind, status, started_at, finished_at, MAX(id) FROM jobs
            WHERE status IN ('succeeded', 'failed', 'cancelled')
            AND started_at IS NOT NULL AND finished_at IS NOT NULL GROUP BY kind ORDER BY kind
            """
        )
        return [LastJob(row[0], row[1], parse_iso(row[2]), parse_iso(row[3])) for row in rows]

    def verification_counts(self) -> list[Verification]:
        """Complete artifacts per source by verification result (`never`: not verified)."""
        rows = self._db.rows(
            "SELECT source, COALESCE(verify_state, 'never'), COUNT(*), MAX(verified_at)"
            " FROM artifacts WHERE status = 'complete' GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return [Verification(row[0], row[1], int(row[2]), parse_optional(row[3])) for row in rows]

    def failed_alert_deliveries(self) -> dict[str, int]:
        """Per channel, the alerts whose delivery there failed."""
        rows = self._db.rows(
            "SELECT j.key, COUNT(*) FROM alerts AS a, json_each(a.delivery_json) AS j"
            " WHERE a.delivery_json LIKE '%failed: %' AND j.type = 'text'"
            " AND j.value LIKE 'failed: %' GROUP BY 1"
        )
        return {row[0]: int(row[1]) for row in rows}

    def undelivered_alerts(self) -> int:
        row = self._db.row("SELECT COUNT(*) FROM alerts WHERE delivery_json = '{}'")
        return int(row[0]) if row else 0
