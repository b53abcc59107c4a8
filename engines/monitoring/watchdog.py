"""The watchdog: missing backups and low disk space, raised and cleared as conditions.

A configured source whose newest good backup is older than BACKUP_MAX_AGE_HOURS
(the guide's 25 hours) opens `missing_backup:<source>`; the repository's disk
with less than BACKUP_MIN_FREE_PERCENT free opens `low_disk_space`. Each clears
with a recovery notice once the condition is gone. While PostgreSQL archives WAL, a
failing archiver, archive lag and gaps in the archive are conditions too (pitr_watch).
"""

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from engines.alerts import AlertDispatcher
from engines.catalog import Catalog
from engines.catalog.monitoring import LastGoodBackup
from engines.config import Settings
from engines.sources import SOURCES

MISSING = "missing_backup"
LOW_DISK = "low_disk_space"


@dataclass(frozen=True)
class Freshness:
    source: str
    last: LastGoodBackup | None
    age: timedelta | None
    too_old: bool

    @property
    def text(self) -> str:
        if self.last is None:
            return f"no successful {self.source} backup in the catalog"
        return f"last good {self.source} backup {self.last.set_id} is {format_age(self.age)} old"


@dataclass(frozen=True)
class DiskSpace:
    path: Path
    free_bytes: int
    total_bytes: int
    threshold_percent: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def low(self) -> bool:
        return self.free_percent < self.threshold_percent


def format_age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    hours = age.total_seconds() / 3600
    if hours < 1:
        return f"{int(age.total_seconds() // 60)} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def configured_sources(settings: Settings) -> list[str]:
    return [entry.kind for entry in SOURCES if entry.source.configured(settings) is None]


def backup_freshness(
    settings: Settings,
    catalog: Catalog,
    now: datetime,
    latest: dict[str, LastGoodBackup] | None = None,
) -> list[Freshness]:
    """Each configured source's last good backup and age; `latest`: the catalog's
    `last_good_backups()` when the caller has read them already."""
    limit = timedelta(hours=settings.backup_max_age_hours)
    latest = catalog.last_good_backups() if latest is None else latest
    found = []
    for source in configured_sources(settings):
        last = latest.get(source)
        age = None if last is None else now - last.created_at
        found.append(Freshness(source, last, age, age is None or age > limit))
    return found


def disk_space(settings: Settings) -> DiskSpace:
    path = settings.repository_dir
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    return DiskSpace(path, usage.free, usage.total, settings.backup_min_free_percent)


def run_watchdog(
    settings: Settings, catalog: Catalog, dispatcher: AlertDispatcher, now: datetime
) -> list[str]:
    """Check, alert what is wrong, clear what recovered; returns the open problems."""
    problems = []
    watched = set()
    for fresh in backup_freshness(settings, catalog, now):
        condition = f"{MISSING}:{fresh.source}"
        watched.add(condition)
        if fresh.too_old:
            problems.append(fresh.text)
            dispatcher.raise_condition(
                condition,
                "critical",
                f"{fresh.text} (alert after {settings.backup_max_age_hours} h)",
            )
        else:
            dispatcher.clear_condition(
                condition, f"{fresh.source} is backed up again: {fresh.text}"
            )
    for stale in catalog.open_conditions(f"{MISSING}:"):
        if stale.kind not in watched:
            dispatcher.clear_condition(stale.kind, f"{stale.kind}: source no longer configured")
    space = disk_space(settings)
    text = f"{space.path}: {space.free_percent:.1f}% free"
    if space.low:
        problems.append(text)
        dispatcher.raise_condition(
            LOW_DISK, "warning", f"{text}, below BACKUP_MIN_FREE_PERCENT={space.threshold_percent}"
        )
    else:
        dispatcher.clear_condition(LOW_DISK, f"disk space recovered: {text}")
    if settings.postgres_configured and not settings.browsing:
        # Loaded only here: the PostgreSQL driver and the WAL archive's modules.
        from engines.monitoring.pitr_watch import watch_pitr

        problems += watch_pitr(settings, catalog, dispatcher, now)
    return problems
