"""Every catalog figure of the API's overview in two passes over the artifacts' figures index.

`StatsMixin`'s queries (source_totals, tier_totals, verification_totals, offsite_summary,
destination_totals) each answer one question and each scanned the artifacts table, whose
rows carry 0.7-3 KiB of sealed metadata: six scans, 300-450 ms with 10,000 sets. Here the
same figures come from schema v5's `artifacts_figures` index (every column they read,
the files snapshot's pack bytes included), grouped once per source and once per set:
the sets' figures are summed per tier and status, each destination's copies joined by
their primary key. Each figure equals its `StatsMixin` counterpart (tests/test_catalog_stats.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from engines.catalog.db import Database
from engines.catalog.rows import ADDED_BYTES_SQL
from engines.catalog.stats import (
    DestinationTotals,
    OffsiteSummary,
    SourceTotals,
    StatsMixin,
    TierTotals,
    VerificationTotals,
)


@dataclass(frozen=True)
class OverviewFigures:
    sources: list[SourceTotals]
    tiers: list[TierTotals]
    verification: VerificationTotals
    stored_on: dict[str, DestinationTotals]
    offsite: dict[str, OffsiteSummary]


# Grouped by set and source first: the index's order, so no sort of the artifacts.
_SOURCES_SQL = f"""
SELECT source, COUNT(*), SUM(n), COALESCE(SUM(b), 0), COALESCE(SUM(p), 0)
FROM (SELECT a.source, COUNT(*) AS n, SUM({ADDED_BYTES_SQL}) AS b, SUM(a.plain_size) AS p
      FROM artifacts AS a WHERE a.status = 'complete' GROUP BY a.set_id, a.source)
GROUP BY source ORDER BY source
"""


def _sets_sql(destinations: int) -> str:
    """Per (set known, tier, status): sets, complete artifacts and bytes, verification, and
    per destination i stored/failed copies, stored bytes, sets behind, the newest behind."""
    joins = "".join(
        f" LEFT JOIN copies AS c{i} ON c{i}.artifact_id = a.id AND c{i}.destination = ?"
        for i in range(destinations)
    )
    per_copy = "".join(
        f", COALESCE(SUM(c{i}.state = 'stored'), 0) AS stored{i}"
        f", COALESCE(SUM(c{i}.state = 'failed'), 0) AS failed{i}"
        f", SUM(CASE WHEN c{i}.state = 'stored' THEN {ADDED_BYTES_SQL} ELSE 0 END) AS bytes{i}"
        for i in range(destinations)
    )
    sums = "".join(
        f", SUM(p.stored{i}), SUM(p.bytes{i}), SUM(p.failed{i}), SUM(p.stored{i} < p.artifacts),"
        f" (SELECT q.set_id FROM per_set AS q JOIN backup_sets AS t ON t.id = q.set_id"
        f"  WHERE t.status != 'running' AND q.stored{i} < q.artifacts"
        f"  ORDER BY t.created_at DESC, t.rowid DESC LIMIT 1)"
        for i in range(destinations)
    )
    return f"""
    WITH per_set AS MATERIALIZED (
        SELECT a.set_id, COUNT(*) AS artifacts, SUM({ADDED_BYTES_SQL}) AS bytes,
               SUM(a.verify_state = 'ok') AS ok, SUM(a.verify_state = 'failed') AS failed,
               SUM(a.verify_state IS NULL) AS never,
               MIN(a.verified_at) AS oldest, MAX(a.verified_at) AS newest{per_copy}
        FROM artifacts AS a{joins}
        WHERE a.status = 'complete' GROUP BY a.set_id
    )
    SELECT s.id IS NOT NULL, s.tier, s.status, COUNT(*), SUM(p.artifacts), SUM(p.bytes),
           COALESCE(SUM(p.ok), 0), COALESCE(SUM(p.failed), 0), COALESCE(SUM(p.never), 0),
           MIN(p.oldest), MAX(p.newest){sums}
    FROM per_set AS p LEFT JOIN backup_sets AS s ON s.id = p.set_id
    GROUP BY 1, 2, 3
    """


class OverviewFiguresMixin(StatsMixin):
    _db: Database

    def overview_figures(self, destinations: Sequence[str]) -> OverviewFigures:
        """Per source, per tier, verification and, per copy destination, its stored
        totals and offsite summary: what the overview shows of the catalog."""
        sources = [SourceTotals(*(row[i] for i in range(5))) for row in self._db.rows(_SOURCES_SQL)]
        groups = [
            tuple(row) for row in self._db.rows(_sets_sql(len(destinations)), tuple(destinations))
        ]
        # Artifacts of a set gone from backup_sets count in no tier and no finished set.
        known = [row for row in groups if row[0]]
        finished = [row for row in known if row[2] != "running"]
        tier_bytes: dict[str | None, int] = {}
        for row in known:
            tier_bytes[row[1]] = tier_bytes.get(row[1], 0) + row[5]
        checks = [row[9] for row in groups if row[9] is not None]
        latest = [row[10] for row in groups if row[10] is not None]
        verification = self._verification_with(
            (
                *(sum(row[i] for row in groups) for i in (4, 6, 7, 8)),
                min(checks, default=None),
                max(latest, default=None),
            )
        )
        stored_on, offsite = {}, {}
        for i, name in enumerate(destinations):
            at = 11 + 5 * i
            stored_on[name] = DestinationTotals(
                name, sum(row[at] for row in groups), sum(row[at + 1] for row in groups)
            )
            offsite[name] = OffsiteSummary(
                name,
                sum(row[3] for row in finished),
                sum(row[at + 3] for row in finished),
                sum(row[at + 2] for row in finished),
                groups[0][at + 4] if groups else None,
            )
        return OverviewFigures(
            sources, self._tiers_with(tier_bytes), verification, stored_on, offsite
        )
