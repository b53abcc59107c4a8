"""The whole catalog at a glance (the guide's `stats/overview`): counts and sizes per
source and tier, each source's last good backup and its age, verification coverage,
the repository's usage and each copy destination's.

Every figure comes from a grouped query (engines/catalog/stats.py) or from what
`status` and `health` read (last good backups, off-site counts, free space), so the
overview and those commands never disagree. The catalog's figures are kept until a set,
an artifact or a copy changes (Catalog.change_marker; every figure here is read from
those three tables only, so a running job's progress keeps them), so polling dashboards
cost a few milliseconds even with 10,000 sets; ages and free space are taken at every
call. Nothing here lists a bucket: copy destinations are read from the catalog's copy
records.
"""

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime

from engines.catalog import Catalog
from engines.catalog.monitoring import LastGoodBackup
from engines.catalog.stats import DestinationTotals, SourceTotals, TierTotals, VerificationTotals
from engines.config import Settings
from engines.monitoring.watchdog import backup_freshness, disk_space
from engines.repository.offsite import OffsiteStatus, offsite_status
from engines.repository.whereabouts import copy_destination_names


@dataclass(frozen=True)
class LastGood:
    set_id: str
    created_at: datetime
    age_seconds: float


@dataclass(frozen=True)
class SourceOverview:
    source: str
    configured: bool
    sets: int  # sets holding a complete artifact of it
    artifacts: int  # its complete artifacts
    stored_bytes: int
    plain_bytes: int
    last_good: LastGood | None
    too_old: bool  # configured, and no good backup younger than BACKUP_MAX_AGE_HOURS


@dataclass(frozen=True)
class RepositoryUsage:
    location: str
    artifacts: int
    stored_bytes: int  # what the catalog's complete artifacts take there
    free_bytes: int  # on the repository's file system
    total_bytes: int
    free_percent: float
    min_free_percent: int
    low: bool


@dataclass(frozen=True)
class NotOffsite:
    id: str
    created_at: datetime
    gaps: list[str]


@dataclass(frozen=True)
class DestinationUsage:
    destination: str
    artifacts: int  # complete artifacts whose copy there is recorded stored
    stored_bytes: int
    complete_sets: int
    incomplete_sets: int
    failed_copies: int
    last_copy_at: datetime | None
    newest_not_offsite: NotOffsite | None


@dataclass(frozen=True)
class Totals:
    sets: int
    artifacts: int
    stored_bytes: int


@dataclass(frozen=True)
class Overview:
    checked_at: datetime
    max_age_hours: int
    totals: Totals
    sources: list[SourceOverview]
    tiers: list[TierTotals]
    verification: VerificationTotals
    repository: RepositoryUsage
    destinations: list[DestinationUsage]


@dataclass(frozen=True)
class _CatalogFigures:
    """Everything the overview reads from the catalog: one function of its content."""

    totals: dict[str, SourceTotals]
    latest: dict[str, LastGoodBackup]
    tiers: list[TierTotals]
    verification: VerificationTotals
    offsite: list[OffsiteStatus]
    stored_on: dict[str, DestinationTotals]


class _FiguresCache:
    """The last figures read from each catalog, kept while its change marker stays.

    Dashboards and monitors poll the overview; with 10,000 sets its queries take tens of
    milliseconds on the catalog's one connection, which every request shares. Between
    two backups nothing changes, so the figures are read once per change. One reader at a
    time: requests arriving together wait for the one reading and share its figures.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: weakref.WeakKeyDictionary[Catalog, tuple[object, _CatalogFigures]] = (
            weakref.WeakKeyDictionary()
        )

    def figures(self, catalog: Catalog, destinations: tuple[str, ...]) -> _CatalogFigures:
        with self._lock:
            key = (catalog.change_marker(), destinations)
            kept = self._kept.get(catalog)
            if kept is not None and kept[0] == key:
                return kept[1]
            figures = _read_figures(catalog, destinations)
            self._kept[catalog] = (key, figures)
            return figures


_CACHE = _FiguresCache()


def _read_figures(catalog: Catalog, destinations: tuple[str, ...]) -> _CatalogFigures:
    figures = catalog.overview_figures(destinations)
    return _CatalogFigures(
        {t.source: t for t in figures.sources},
        catalog.last_good_backups(),
        figures.tiers,
        figures.verification,
        offsite_status(catalog, destinations, figures.offsite),
        figures.stored_on,
    )


def _sources(
    settings: Settings, catalog: Catalog, figures: _CatalogFigures, now: datetime
) -> list[SourceOverview]:
    freshness = {
        f.source: f for f in backup_freshness(settings, catalog, now, latest=figures.latest)
    }
    unwatched = [source for source in sorted(figures.totals) if source not in freshness]
    found = []
    for source in [*freshness, *unwatched]:
        fresh = freshness.get(source)
        last = fresh.last if fresh else figures.latest.get(source)
        counted = figures.totals.get(source)
        found.append(
            SourceOverview(
                source,
                fresh is not None,
                counted.sets if counted else 0,
                counted.artifacts if counted else 0,
                counted.stored_bytes if counted else 0,
                counted.plain_bytes if counted else 0,
                None
                if last is None
                else LastGood(
                    last.set_id, last.created_at, (now - last.created_at).total_seconds()
                ),
                fresh.too_old if fresh else False,
            )
        )
    return found


def _destinations(figures: _CatalogFigures) -> list[DestinationUsage]:
    found = []
    for offsite in figures.offsite:
        stored = figures.stored_on[offsite.destination]
        newest = offsite.newest_not_offsite
        found.append(
            DestinationUsage(
                offsite.destination,
                stored.artifacts,
                stored.stored_bytes,
                offsite.complete_sets,
                offsite.incomplete_sets,
                offsite.failed_copies,
                offsite.last_copy_at,
                None
                if newest is None
                else NotOffsite(newest.id, newest.created_at, list(offsite.newest_gaps)),
            )
        )
    return found


def collect_overview(settings: Settings, catalog: Catalog, now: datetime) -> Overview:
    """The overview at `now`; the catalog's figures are read again only once it changed."""
    figures = _CACHE.figures(catalog, copy_destination_names(settings))
    sources = _sources(settings, catalog, figures, now)
    artifacts = sum(s.artifacts for s in sources)
    stored = sum(s.stored_bytes for s in sources)
    space = disk_space(settings)
    repository = RepositoryUsage(
        str(space.path),
        artifacts,
        stored,
        space.free_bytes,
        space.total_bytes,
        round(space.free_percent, 2),
        space.threshold_percent,
        space.low,
    )
    return Overview(
        now,
        settings.backup_max_age_hours,
        Totals(sum(t.sets for t in figures.tiers), artifacts, stored),
        sources,
        figures.tiers,
        figures.verification,
        repository,
        _destinations(figures),
    )
