"""The overview's figures read one grouped query each: the reference that
`Catalog.overview_figures` (two passes over one index) must equal, and that the tests
check against row-by-row readings."""

from engines.catalog import Catalog
from engines.catalog.rows import ADDED_BYTES_SQL
from engines.catalog.stats import DestinationTotals, SourceTotals, TierTotals, VerificationTotals


def source_totals(catalog: Catalog) -> list[SourceTotals]:
    rows = catalog._db.rows(
        f"""
        SELECT a.source, COUNT(DISTINCT a.set_id), COUNT(*),
               COALESCE(SUM({ADDED_BYTES_SQL}), 0), COALESCE(SUM(a.plain_size), 0)
        FROM artifacts AS a WHERE a.status = 'complete'
        GROUP BY a.source ORDER BY a.source
        """
    )
    return [SourceTotals(*(row[i] for i in range(5))) for row in rows]


def tier_totals(catalog: Catalog) -> list[TierTotals]:
    # Two passes (sets by tier and status; bytes by tier) cost half of one with a
    # per-set subquery joined back.
    sizes = catalog._db.rows(
        f"""
        SELECT s.tier, SUM({ADDED_BYTES_SQL})
        FROM artifacts AS a JOIN backup_sets AS s ON s.id = a.set_id
        WHERE a.status = 'complete' GROUP BY s.tier
        """
    )
    return catalog._tiers_with({row[0]: int(row[1] or 0) for row in sizes})


def verification_totals(catalog: Catalog) -> VerificationTotals:
    artifacts = catalog._db.row(
        """
        SELECT COUNT(*), COALESCE(SUM(verify_state = 'ok'), 0),
               COALESCE(SUM(verify_state = 'failed'), 0),
               COALESCE(SUM(verify_state IS NULL), 0),
               MIN(verified_at), MAX(verified_at)
        FROM artifacts WHERE status = 'complete'
        """
    )
    assert artifacts is not None  # an aggregate always answers a row
    return catalog._verification_with(tuple(artifacts))


def destination_totals(catalog: Catalog, destination: str) -> DestinationTotals:
    row = catalog._db.row(
        f"""
        SELECT COUNT(*), COALESCE(SUM({ADDED_BYTES_SQL}), 0)
        FROM copies AS c JOIN artifacts AS a ON a.id = c.artifact_id
        WHERE c.destination = ? AND c.state = 'stored' AND a.status = 'complete'
        """,
        (destination,),
    )
    assert row is not None
    return DestinationTotals(destination, row[0], row[1])
