"""Questions the watchdog, status, retention and verification ask of the whole catalog."""

from dataclasses import dataclass
from datetime import datetime

from engines.catalog.db import Database
from engines.catalog.rows import Artifact, Job, counted_as
from engines.catalog.times import parse_iso

GOOD_SET_STATUSES = ("complete", "partial")


@dataclass(frozen=True)
class LastGoodBackup:
    source: str
    set_id: str
    created_at: datetime  # when the set was started: the time its data was read


class MonitoringMixin:
    _db: Database

    def last_good_backups(self) -> dict[str, LastGoodBackup]:
        """Per source, the newest complete or partial set holding a complete artifact of it."""
        sources = self._db.rows(
            "SELECT DISTINCT source FROM artifacts WHERE status = 'complete' ORDER BY source"
        )
        found: dict[str, LastGoodBackup] = {}
        for (source,) in sources:
            # Walked newest first along the index (its entries end in the rowid, the tie
            # breaker), so 10,000 sets cost a few rows per source, not a sort of them all.
            row = self._db.row(
                """
                SELECT s.id, s.created_at FROM backup_sets AS s INDEXED BY backup_sets_newest
                WHERE s.status IN ('complete', 'partial') AND EXISTS (
                    SELECT 1 FROM artifacts AS a
                    WHERE a.set_id = s.id AND a.source = ? AND a.status = 'complete')
                ORDER BY s.created_at DESC, s.rowid DESC LIMIT 1
                """,
                (source,),
            )
            if row is not None:
                found[source] = LastGoodBackup(source, row[0], parse_iso(row[1]))
        return found

    def newest_restorable_backups(self) -> dict[str, str]:
        """Per source, the set id a restore of it picks as `latest`; PostgreSQL base backups
        (mode `base`) apart, as "postgres base backup", so a newer base backup does not
        hide the newest dump (deleting that one loses what a database restore uses)."""
        rows = self._db.rows(
            """
            SELECT a.source, a.mode, s.id AS set_id
            FROM artifacts AS a JOIN backup_sets AS s ON s.id = a.set_id
            WHERE a.status = 'complete' AND s.status IN ('complete', 'partial')
            ORDER BY s.created_at DESC, s.rowid DESC
            """
        )
        found: dict[str, str] = {}
        for row in rows:
            found.setdefault(counted_as(row["source"], row["mode"]), row["set_id"])
        return found

    def all_artifacts(self) -> list[Artifact]:
        rows = self._db.rows("SELECT * FROM artifacts ORDER BY set_id, id")
        return [Artifact.from_row(row) for row in rows]

    def artifacts_least_recently_verified(self, limit: int) -> list[Artifact]:
        """Complete artifacts never verified first, then the ones verified longest ago."""
        rows = self._db.rows(
            "SELECT * FROM artifacts WHERE status = 'complete'"
            " ORDER BY verified_at IS NOT NULL, verified_at, id LIMIT ?",
            (int(limit),),
        )
        return [Artifact.from_row(row) for row in rows]

    def count_complete_artifacts(self) -> int:
        row = self._db.row("SELECT COUNT(*) FROM artifacts WHERE status = 'complete'")
        return int(row[0]) if row else 0

    def unfinished_jobs(self) -> list[Job]:
        rows = self._db.rows("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY id")
        return [Job.from_row(row) for row in rows]
