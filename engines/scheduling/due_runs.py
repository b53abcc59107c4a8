"""What the scheduler has to do now, decided from the catalog's record of planned runs.

Each schedule's fire times since its last recorded run are due. After downtime
they coalesce: the newest runs if it is within the grace time, the others are
recorded as missed (at most MAX_RECORDED_MISSES of them one by one). Backups due
together form one group, served by one job whose set carries the highest tier.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engines.catalog import Catalog
from engines.scheduling.schedules import TIERS_BY_RANK, Schedule

logger = logging.getLogger("jarvis.scheduler")

MAX_RECORDED_MISSES = 100
ACTION_ORDER = ("backup", "cleanup", "drill")


@dataclass
class DueRun:
    schedule: Schedule
    planned_at: datetime
    run_id: int = 0


@dataclass
class RunGroup:
    """Runs served by one job: backups due together become one set."""

    action: str
    runs: list[DueRun] = field(default_factory=list)

    @property
    def tier(self) -> str:
        names = [run.schedule.name for run in self.runs]
        return max(names, key=lambda n: TIERS_BY_RANK.index(n) if n in TIERS_BY_RANK else -1)

    @property
    def description(self) -> str:
        if self.action == "backup":
            return f"scheduled {self.tier} backup (full)"
        return f"scheduled {self.runs[0].schedule.spec.label}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M %Z}"


def newest_fire_time(schedule: Schedule, now: datetime) -> datetime:
    """The last fire time at or before `now` (searching back in doubling steps)."""
    step = timedelta(minutes=1)
    while True:
        moment = schedule.next_after(now - step)
        if moment is not None and moment <= now:
            while (following := schedule.next_after(moment)) is not None and following <= now:
                moment = following
            return moment
        step *= 2


def plan_due_runs(
    catalog: Catalog,
    schedules: list[Schedule],
    now: datetime,
    *,
    baseline: datetime,
    grace_minutes: int,
) -> list[DueRun]:
    """Record the missed runs and return the runs to do now, each recorded `running`.

    A schedule that never ran counts from `baseline` (when the scheduler started).
    """
    grace = timedelta(minutes=grace_minutes)
    due = []
    for schedule in schedules:
        last = catalog.latest_schedule_run(schedule.name)
        since = last.planned_at if last else baseline
        times, cut = schedule.fire_times(since, now, MAX_RECORDED_MISSES)
        if not times:
            continue
        newest = newest_fire_time(schedule, now) if cut else times[-1]
        within_grace = now - newest <= grace
        for planned in [t for t in times if t != newest]:
            detail = f"the scheduler was not running at {_when(planned)}"
            if within_grace:
                detail += f"; coalesced into the run planned at {_when(newest)}"
            catalog.record_schedule_run(schedule.name, planned, "missed", detail=detail)
        if cut:
            logger.warning("%s: more than %d runs missed", schedule.name, MAX_RECORDED_MISSES)
        if within_grace:
            run = DueRun(schedule, newest)
            run.run_id = catalog.record_schedule_run(schedule.name, newest, "running")
            due.append(run)
            continue
        catalog.record_schedule_run(
            schedule.name,
            newest,
            "missed",
            detail=f"the scheduler started at {_when(now)}, past the grace time "
            f"(BACKUP_MISFIRE_GRACE_MINUTES={grace_minutes})",
        )
        logger.warning("%s run planned at %s missed", schedule.name, newest)
    return due


def group_runs(due: list[DueRun]) -> list[RunGroup]:
    """One group per action, backups first, then cleanup, then the restore drill."""
    groups: dict[str, RunGroup] = {}
    for run in due:
        action = run.schedule.spec.action
        groups.setdefault(action, RunGroup(action)).runs.append(run)
    return [groups[action] for action in ACTION_ORDER if action in groups]


def recover_interrupted_runs(catalog: Catalog, now: datetime) -> None:
    """Runs left `running` by a scheduler that died take their job's outcome."""
    for run in catalog.interrupted_schedule_runs():
        job = catalog.get_job(run.job_id) if run.job_id else None
        if job is not None and not job.finished:
            continue
        outcome = {"succeeded": "succeeded", "cancelled": "cancelled"}.get(
            job.status if job else "", "failed"
        )
        catalog.finish_schedule_run(
            run.id, outcome, now, detail="the scheduler stopped during this run"
        )
