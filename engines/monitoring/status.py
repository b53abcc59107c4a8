"""`jarvis-tui status` (the guide's `backup:status`): schedules, last results, freshness,
and how far each copy destination (S3) is behind."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from engines.catalog import Catalog
from engines.catalog.schedule_runs import ScheduleRun
from engines.config import Settings
from engines.monitoring.watchdog import backup_freshness, format_age
from engines.repository.offsite import OffsiteStatus, offsite_status
from engines.repository.whereabouts import copy_destination_names
from engines.scheduling.clock import configured_timezone, timezone_name
from engines.scheduling.moments import moment_words
from engines.scheduling.schedules import describe_holder, scheduler_holder, schedules_from


@dataclass(frozen=True)
class ScheduleStatus:
    name: str
    label: str
    enabled: bool
    cron: str
    words: str
    next_run: datetime | None
    last_run: ScheduleRun | None

    def to_json(self) -> dict[str, Any]:
        last = self.last_run
        return {
            "name": self.name,
            "label": self.label,
            "enabled": self.enabled,
            "cron": self.cron,
            "words": self.words,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "last_run": None
            if last is None
            else {
                "planned_at": last.planned_at.isoformat(),
                "started_at": last.started_at.isoformat() if last.started_at else None,
                "outcome": last.outcome,
                "job_id": last.job_id,
                "detail": last.detail,
            },
        }


@dataclass(frozen=True)
class SourceStatus:
    source: str
    set_id: str | None
    created_at: datetime | None
    age: timedelta | None
    too_old: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "last_good_backup": self.set_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "age_hours": None if self.age is None else round(self.age.total_seconds() / 3600, 2),
            "too_old": self.too_old,
        }


@dataclass(frozen=True)
class StatusReport:
    timezone: str
    schedules: list[ScheduleStatus]
    sources: list[SourceStatus]
    scheduler: dict[str, Any] | None
    open_alerts: list[str]
    offsite: list[OffsiteStatus] = field(default_factory=list)  # per copy destination
    checked_at: datetime | None = None  # with zone: the scheduler line in the operator's words
    zone: tzinfo | None = None

    @property
    def scheduler_text(self) -> str:
        return describe_holder(self.scheduler, self.checked_at, self.zone)

    @property
    def next_text(self) -> str | None:
        """The soonest scheduled run: "daily 02:00 today (in 3 h)"; None when none is on."""
        now, zone = self.checked_at, self.zone
        upcoming = [(s.next_run, s.name) for s in self.schedules if s.next_run is not None]
        if not upcoming or now is None or zone is None:
            return None
        moment, name = min(upcoming)
        return f"{name} {moment_words(moment, now, zone)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "schedules": [s.to_json() for s in self.schedules],
            "sources": [s.to_json() for s in self.sources],
            "scheduler": self.scheduler,
            "open_alerts": self.open_alerts,
            "offsite": [o.to_json() for o in self.offsite],
        }


def collect_status(settings: Settings, catalog: Catalog, now: datetime) -> StatusReport:
    zone = configured_timezone(settings)
    schedules = [
        ScheduleStatus(
            schedule.name,
            schedule.spec.label,
            schedule.enabled,
            schedule.cron,
            schedule.words,
            schedule.next_after(now).astimezone(zone) if schedule.enabled else None,
            catalog.latest_schedule_run(schedule.name, attempted_only=True),
        )
        for schedule in schedules_from(settings, zone)
    ]
    sources = [
        SourceStatus(
            fresh.source,
            fresh.last.set_id if fresh.last else None,
            fresh.last.created_at if fresh.last else None,
            fresh.age,
            fresh.too_old,
        )
        for fresh in backup_freshness(settings, catalog, now)
    ]
    alerts = [f"{a.kind}: {a.message}" for a in catalog.open_conditions()]
    offsite = offsite_status(catalog, copy_destination_names(settings))
    return StatusReport(
        timezone_name(zone),
        schedules,
        sources,
        scheduler_holder(settings),
        alerts,
        offsite,
        checked_at=now,
        zone=zone,
    )


__all__ = ["ScheduleStatus", "SourceStatus", "StatusReport", "collect_status", "format_age"]
