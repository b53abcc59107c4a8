"""Counts and sizes over the whole catalog (the API's overview), and the parts of their
reading `overview_figures` shares: tiers by status, verification of the good sets, and
each destination's off-site summary.

Every figure is summed by SQLite, so no row crosses into Python. Sizes count complete
artifacts only, as `Artifact.added_bytes` does: the artifact's file and, for a files
snapshot (whose artifact is its manifest), the packs it wrote.
"""

from dataclasses import dataclass
from datetime import datetime

from engines.catalog.db import Database
from engines.catalog.times import parse_optional


@dataclass(frozen=True)
class SourceTotals:
    """One source's complete artifacts across every set."""

    source: str
    sets: int
    artifacts: int
    stored_bytes: int
    plain_bytes: int


@dataclass(frozen=True)
class TierTotals:
    """The sets of one tier (None: a set recorded without one), by status."""

    tier: str | None
    sets: int
    complete: int
    partial: int
    failed: int
    running: int
    stored_bytes: int


@dataclass(frozen=True)
class VerificationTotals:
    """Complete artifacts and finished good sets by verification result."""

    artifacts: int
    artifacts_ok: int
    artifacts_failed: int
    artifacts_never: int
    sets: int
    sets_ok: int
    sets_failed: int
    sets_never: int
    oldest_verified_at: datetime | None  # the least recently verified artifact's check
    newest_verified_at: datetime | None


@dataclass(frozen=True)
class DestinationTotals:
    """Complete artifacts whose copy on a destination is recorded stored, and their bytes."""

    destination: str
    artifacts: int
    stored_bytes: int


@dataclass(frozen=True)
class OffsiteSummary:
    destination: str
    finished_sets: int  # finished sets holding a complete artifact
    incomplete_sets: int  # ... of which `destination` lacks a complete artifact
    failed_copies: int
    newest_incomplete: str | None  # that newest such set's id


class StatsMixin:
    _db: Database

    def _tiers_with(self, bytes_of: dict[str | None, int]) -> list[TierTotals]:
        """The sets of each tier by status, with `bytes_of` each tier's complete bytes."""
        counts = self._db.rows(
            """
            SELECT tier, COUNT(*), SUM(status = 'complete'), SUM(status = 'partial'),
                   SUM(status = 'failed'), SUM(status = 'running')
            FROM backup_sets GROUP BY tier ORDER BY tier IS NULL, tier
            """
        )
        return [TierTotals(*(row[i] for i in range(6)), bytes_of.get(row[0], 0)) for row in counts]

    def offsite_summary(self, destination: str) -> OffsiteSummary:
        """`copy_counts_on` summed by SQLite: finished sets with a complete artifact, those
        not complete on `destination`, failed copies there, and the newest such set."""
        row = self._db.row(
            """
            WITH per_set AS MATERIALIZED (
                SELECT s.id, s.created_at, s.rowid AS position, COUNT(*) AS artifacts,
                       COALESCE(SUM(c.state = 'stored'), 0) AS stored,
                       COALESCE(SUM(c.state = 'failed'), 0) AS failed
                FROM backup_sets AS s
                JOIN artifacts AS a ON a.set_id = s.id AND a.status = 'complete'
                LEFT JOIN copies AS c ON c.artifact_id = a.id AND c.destination = ?
                WHERE s.status != 'running' GROUP BY s.id
            )
            SELECT COUNT(*), COALESCE(SUM(stored < artifacts), 0), COALESCE(SUM(failed), 0),
                   (SELECT id FROM per_set WHERE stored < artifacts
                    ORDER BY created_at DESC, position DESC LIMIT 1)
            FROM per_set
            """,
            (destination,),
        )
        assert row is not None  # an aggregate always answers a row
        return OffsiteSummary(destination, row[0], row[1], row[2], row[3])

    def _verification_with(self, artifacts: tuple) -> VerificationTotals:
        """`artifacts`: complete artifacts, ok, failed, never verified, oldest and newest
        check (ISO text or None); the good sets' figures are read here."""
        sets = self._db.row(
            """
            SELECT COUNT(*), COALESCE(SUM(verified_state = 'ok'), 0),
                   COALESCE(SUM(verified_state = 'failed'), 0),
                   COALESCE(SUM(verified_state IS NULL), 0)
            FROM backup_sets WHERE status IN ('complete', 'partial')
            """
        )
        assert sets is not None  # an aggregate always answers a row
        return VerificationTotals(
            *(artifacts[i] for i in range(4)),
            *(sets[i] for i in range(4)),
            parse_optional(artifacts[4]),
            parse_optional(artifacts[5]),
        )
