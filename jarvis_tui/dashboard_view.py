"""The dashboard's facts, gathered off the UI thread from the engine's status and health.

Two passes at different paces: `gather_dashboard` reads the catalog and the
disk (every few seconds), `probe_servers` asks each configured server whether
it answers (every half minute, each probe bounded by the engine's timeout), and
`PitrReader` the archiver and the recoverable window at that same slower pace.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engines.catalog import Alert
from engines.config import Settings
from jarvis_tui.engine_access import EngineAccess
from jarvis_tui.formatting import human_size, local_moment

if TYPE_CHECKING:
    from engines.monitoring.status import ScheduleStatus, SourceStatus, StatusReport
    from engines.monitoring.watchdog import DiskSpace
    from engines.repository.offsite import OffsiteStatus

RECENT_ALERTS = 5

DiskProbe = Callable[[Settings], "DiskSpace"]


def repository_disk_space(settings: Settings) -> "DiskSpace":
    """The engine's disk probe (the watchdog's), loaded in the worker that asks."""
    from engines.monitoring.watchdog import disk_space

    return disk_space(settings)


@dataclass(frozen=True)
class SourceRow:
    kind: str
    not_configured: str | None
    freshness: "SourceStatus | None"


@dataclass(frozen=True)
class DestinationRow:
    name: str
    state: str
    detail: str
    healthy: bool
    note: str = ""  # a line under the table: what a copy destination lacks


@dataclass
class DashboardFacts:
    sources: list[SourceRow] = field(default_factory=list)
    destinations: list[DestinationRow] = field(default_factory=list)
    schedules: list["ScheduleStatus"] = field(default_factory=list)
    timezone: str = ""
    scheduler_holder: str = ""
    alerts: list[Alert] = field(default_factory=list)
    open_alerts: list[str] = field(default_factory=list)
    catalog_error: str | None = None


@dataclass(frozen=True)
class ServerProbe:
    name: str
    ok: bool
    detail: str


def source_labels() -> dict[str, str]:
    """Every registered source (kind: label), in the order the console lists them: the
    registry's `full_order`, the guide's."""
    from engines.sources import in_full_order

    return {entry.kind: entry.label for entry in in_full_order()}


def all_sources() -> list[str]:
    return list(source_labels())


def gather_sources(settings: Settings, status: "StatusReport | None") -> list[SourceRow]:
    from engines.sources import get_source

    freshness = {s.source: s for s in status.sources} if status else {}
    rows = []
    for kind in all_sources():
        reason = get_source(kind).configured(settings)
        rows.append(SourceRow(kind, reason, freshness.get(kind)))
    return rows


def gather_destinations(
    settings: Settings, disk: DiskProbe, offsite: "Sequence[OffsiteStatus]" = ()
) -> list[DestinationRow]:
    root = settings.repository_dir
    if root.is_dir():
        space = disk(settings)
        detail = f"{root} · {human_size(space.free_bytes)} free ({space.free_percent:.0f}%)" + (
            f", below {space.threshold_percent}%" if space.low else ""
        )
        local = DestinationRow(
            "local", "low space" if space.low else "ready", detail, not space.low
        )
    else:
        local = DestinationRow("local", "not created", f"{root}: run `jarvis-tui init`", False)
    if not settings.s3_enabled:
        return [local, DestinationRow("s3", "off", "S3_ENABLED=false", True)]
    bucket = f"bucket {settings.s3_bucket or '(none set)'}"
    copies = [offsite_row(o, bucket if o.destination == "s3" else "") for o in offsite]
    if not any(row.name == "s3" for row in copies):
        copies.insert(0, DestinationRow("s3", "enabled", bucket, True))
    return [local, *copies]


def offsite_row(status: "OffsiteStatus", where: str) -> DestinationRow:
    """A copy destination: how many sets are complete there, and what is behind."""
    total = status.complete_sets + status.incomplete_sets
    counted = f"{status.complete_sets} of {total} sets off-site"
    notes = []
    if status.failed_copies:
        notes.append(f"{status.failed_copies} copy(ies) failed")
    if status.newest_not_offsite is not None:
        notes.append(f"newest not off-site {status.newest_not_offsite.id}")
    if status.last_copy_at is not None:
        notes.append(f"last copy {local_moment(status.last_copy_at)}")
    if status.failed_copies:
        state = "copy failed"
    elif status.incomplete_sets:
        state = "behind"
    else:
        state = "in sync"
    if state != "in sync":
        notes.append("s in Catalog syncs")
    return DestinationRow(
        status.destination,
        state,
        " · ".join(filter(None, [where, counted])),
        state == "in sync",
        f"{status.destination}: {' · '.join(notes)}" if notes else "",
    )


def gather_dashboard(access: EngineAccess, now: datetime, disk: DiskProbe) -> DashboardFacts:
    from engines.monitoring.status import collect_status

    settings = access.settings
    facts = DashboardFacts()
    status: Any = None
    try:
        catalog = access.catalog()
        status = collect_status(settings, catalog, now)
        facts.alerts = catalog.list_alerts(limit=RECENT_ALERTS)
    except Exception as error:  # shown calmly on the dashboard
        facts.catalog_error = str(error) or type(error).__name__
    if status is not None:
        facts.schedules = status.schedules
        facts.timezone = status.timezone
        facts.scheduler_holder = status.scheduler_text
        facts.open_alerts = status.open_alerts
    facts.destinations = gather_destinations(settings, disk, status.offsite if status else [])
    facts.sources = gather_sources(settings, status)
    return facts


@dataclass(frozen=True)
class PitrFacts:
    """The PITR card: shown while the server archives WAL (point-in-time recovery is
    optional: nothing is shown otherwise)."""

    shown: bool = False
    state: str = ""  # ok, warning (lag), failed (failing archiver, gap), unknown
    window: list[str] = field(default_factory=list)
    lag: str = ""
    problems: list[str] = field(default_factory=list)


class PitrReader:
    """Reads the PITR card at the probe pace; the window is read again only when the
    archive or the base backups changed (the engine's CachedTimeline)."""

    def __init__(self) -> None:
        self._windows: Any = None

    def read(self, access: EngineAccess, now: datetime) -> PitrFacts:
        from engines.monitoring.pitr_assessment import (
            CachedTimeline,
            assess_pitr,
            pitr_watched,
            window_line,
        )

        settings = access.settings
        if not pitr_watched(settings):
            return PitrFacts()
        self._windows = self._windows or CachedTimeline()
        try:
            catalog = access.catalog()
        except Exception:  # the Sources card says the catalog is unavailable, and why
            return PitrFacts()
        found = assess_pitr(settings, catalog, now, self._windows)
        verdict = found.verdict
        if verdict is None or not verdict.state.archives_here:
            return PitrFacts()
        if found.elsewhere:
            window = [found.elsewhere]
        elif found.window_error:
            window = [f"cannot read the archive: {found.window_error}"]
        else:
            window = [window_line(w, _local_seconds) for w in found.windows] or [
                "no base backup yet, so no moment to restore to "
                "(`jarvis-tui backup postgres --mode base`)"
            ]
        problems = [p for p in (verdict.failing, verdict.lagging) if p] + found.gaps
        state = "failed" if verdict.failing or found.gaps else "ok"
        if state == "ok" and (verdict.lagging or found.window_error):
            state = "warning"
        return PitrFacts(True, state, window, verdict.summary, problems)


def _local_seconds(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def probe_servers(settings: Settings) -> dict[str, ServerProbe]:
    """Each configured server's answer (database, Redis, S3), keyed by source or `s3`."""
    from engines.monitoring.health import check_s3, check_sources

    found = {}
    for check in [*check_sources(settings), *check_s3(settings)]:
        name = check.name.removesuffix(" reachable").lower()
        found[name] = ServerProbe(name, check.ok, check.detail)
    return found
