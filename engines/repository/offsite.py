"""How far each copy destination (S3) is behind: `status`, `health` and the dashboard.

Counted by the catalog (one grouped query per destination, summed by SQLite), so 10,000
sets cost milliseconds on every dashboard refresh; the newest set not complete there is read in
full (engines/repository/whereabouts.py) to say what it lacks.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engines.catalog import BackupSet, Catalog
from engines.catalog.stats import OffsiteSummary
from engines.repository.whereabouts import set_places


@dataclass(frozen=True)
class OffsiteStatus:
    """One copy destination across the catalog's finished sets."""

    destination: str
    complete_sets: int
    incomplete_sets: int
    failed_copies: int  # artifact copies recorded failed, in every set
    last_copy_at: datetime | None  # the newest copy confirmed there
    newest_not_offsite: BackupSet | None
    newest_gaps: tuple[str, ...]  # what that set lacks there

    def to_json(self) -> dict[str, Any]:
        newest = self.newest_not_offsite
        return {
            "destination": self.destination,
            "complete_sets": self.complete_sets,
            "incomplete_sets": self.incomplete_sets,
            "failed_copies": self.failed_copies,
            "last_copy_at": self.last_copy_at.isoformat() if self.last_copy_at else None,
            "newest_not_offsite": None
            if newest is None
            else {
                "id": newest.id,
                "created_at": newest.created_at.isoformat(),
                "gaps": list(self.newest_gaps),
            },
        }


def offsite_status(
    catalog: Catalog,
    destinations: Sequence[str],
    summaries: Mapping[str, OffsiteSummary] | None = None,
) -> list[OffsiteStatus]:
    """Per copy destination: finished sets complete there and not, failed copies, the last
    copy confirmed, and the newest set not complete there (nothing without destinations).
    `summaries`: each destination's `offsite_summary`, when the caller has read them."""
    report = []
    for name in destinations:
        summary = catalog.offsite_summary(name) if summaries is None else summaries[name]
        newest, gaps = None, ()
        if summary.newest_incomplete is not None:
            newest = catalog.get_backup_set(summary.newest_incomplete)
            gaps = tuple(set_places(catalog, [newest.id], destinations)[newest.id].gaps(name))
        report.append(
            OffsiteStatus(
                name,
                summary.finished_sets - summary.incomplete_sets,
                summary.incomplete_sets,
                summary.failed_copies,
                catalog.last_copy_on(name),
                newest,
                gaps,
            )
        )
    return report
