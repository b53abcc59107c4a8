"""The dashboard's facts, gathered in one worker pass from the engine and the catalog."""

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from engines.catalog import Alert
from engines.catalog.monitoring import LastGoodBackup
from engines.sources import SOURCE_MODULES, get_source
from jarvis_tui.engine_access import EngineAccess
from jarvis_tui.output import human_size

# The guide's five kinds of data, in its order; a kind whose engine has not
# landed is listed as unavailable rather than left out.
GUIDE_SOURCES = ("postgres", "redis", "files", "secrets", "config")
RECENT_ALERTS = 5

FreeSpace = Callable[[Path], int]


@dataclass(frozen=True)
class SourceRow:
    kind: str
    available: bool
    not_configured: str | None
    last_good: LastGoodBackup | None
    stale: bool


@dataclass(frozen=True)
class DestinationRow:
    name: str
    state: str
    detail: str
    healthy: bool


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    words: str
    next_run: datetime | None
    last_run: datetime | None
    last_outcome: str | None
    enabled: bool


@dataclass
class DashboardFacts:
    sources: list[SourceRow] = field(default_factory=list)
    destinations: list[DestinationRow] = field(default_factory=list)
    schedules: list[ScheduleRow] | None = None
    schedule_note: str = ""
    alerts: list[Alert] = field(default_factory=list)
    open_conditions: list[Alert] = field(default_factory=list)
    catalog_error: str | None = None


def source_available(kind: str) -> bool:
    module = SOURCE_MODULES.get(kind)
    return module is not None and importlib.util.find_spec(module) is not None


def gather_sources(
    access: EngineAccess, last_good: dict[str, LastGoodBackup], now: datetime
) -> list[SourceRow]:
    settings = access.settings
    max_age = timedelta(hours=settings.backup_max_age_hours)
    kinds = [*GUIDE_SOURCES, *sorted(set(SOURCE_MODULES) - set(GUIDE_SOURCES))]
    rows = []
    for kind in kinds:
        available = source_available(kind)
        reason = get_source(kind).configured(settings) if available else None
        newest = last_good.get(kind)
        stale = newest is None or now - newest.created_at > max_age
        rows.append(SourceRow(kind, available, reason, newest, stale and reason is None))
    return rows


def gather_destinations(access: EngineAccess, free_space: FreeSpace) -> list[DestinationRow]:
    settings = access.settings
    root = access.settings.repository_dir
    if root.is_dir():
        free = human_size(free_space(root))
        local = DestinationRow("local", "ready", f"{root} · {free} free", True)
    else:
        local = DestinationRow("local", "not created", f"{root} (run `jarvis-tui init`)", False)
    rows = [local]
    if settings.s3_enabled:
        bucket = settings.s3_bucket or "(no bucket set)"
        rows.append(
            DestinationRow(
                "s3", "unavailable", f"{bucket}: the S3 destination is not in this build yet", False
            )
        )
    else:
        rows.append(DestinationRow("s3", "off", "S3_ENABLED=false", True))
    return rows


def gather_dashboard(access: EngineAccess, now: datetime, free_space: FreeSpace) -> DashboardFacts:
    facts = DashboardFacts()
    facts.destinations = gather_destinations(access, free_space)
    try:
        catalog = access.catalog()
        last_good = catalog.last_good_backups()
        facts.alerts = catalog.list_alerts(limit=RECENT_ALERTS)
        facts.open_conditions = catalog.open_conditions()
    except Exception as error:  # shown calmly on the dashboard
        facts.catalog_error = str(error) or type(error).__name__
        last_good = {}
    facts.sources = gather_sources(access, last_good, now)
    return facts
