"""The whole catalog at a glance (the guide's `stats/overview`): counts and sizes per
source and tier, each source's last good backup and its age, verification coverage,
the repository's usage and each copy destination's.

Every figure comes from a grouped query (engines/catalog/stats.py) or from what
`status` and `health` read (last good backups, off-site counts, free space), so the
overview and those commands never disagree, and 10,000 sets cost milliseconds.
Nothing here lists a bucket: copy destinations are read from the catalog's copy records.
"""

from dataclasses import dataclass
from datetime import datetime

from engines.catalog import Catalog
from engines.catalog.stats import TierTotals, VerificationTotals
from engines.config import Settings
from engines.monitoring.watchdog import backup_freshness, disk_space
from engines.repository.offsite import offsite_status
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


def _sources(settings: Settings, catalog: Catalog, now: datetime) -> list[SourceOverview]:
    totals = {t.source: t for t in catalog.source_totals()}
    freshness = {f.source: f for f in backup_freshness(settings, catalog, now)}
    unwatched = [source for source in sorted(totals) if source not in freshness]
    latest = catalog.last_good_backups() if unwatched else {}
    found = []
    for source in [*freshness, *unwatched]:
        fresh = freshness.get(source)
        last = fresh.last if fresh else latest.get(source)
        counted = totals.get(source)
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


def _destinations(settings: Settings, catalog: Catalog) -> list[DestinationUsage]:
    found = []
    for offsite in offsite_status(catalog, copy_destination_names(settings)):
        stored = catalog.destination_totals(offsite.destination)
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
    sources = _sources(settings, catalog, now)
    tiers = catalog.tier_totals()
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
        Totals(sum(t.sets for t in tiers), artifacts, stored),
        sources,
        tiers,
        catalog.verification_totals(),
        repository,
        _destinations(settings, catalog),
    )
