"""The in-process scheduler: cron triggers from the settings, one per repository.

A lock file (`.scheduler.lock` in the repository) elects the one process that
fires schedules, so the console and a headless `--run-scheduled` never both
do; `schedules.scheduler_holder` says who holds it. APScheduler's
BackgroundScheduler only wakes `tick()` at the cron times; `tick()` decides
from the catalog what is due, so the cron path, the catch-up after downtime
and the tests (which drive `tick()` with an injected clock) share one code
path:

- every planned run is a schedule_runs row: running, then succeeded / partial
  / failed / cancelled, or skipped (a job was still going) or missed;
- one job at a time: a run that finds another still going is skipped, and an
  alert opens when a schedule is skipped BACKUP_SKIP_ALERT_AFTER times in a row;
- after downtime, the missed runs of a schedule coalesce: the newest runs once
  if it is within BACKUP_MISFIRE_GRACE_MINUTES, the others are recorded as
  missed; backups due together run as one set tagged with the highest tier.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engines.actions.verbs import VERBS, Request, run_scheduled
from engines.alerts import AlertDispatcher
from engines.config import Settings
from engines.errors import JarvisError, JobCancelledError, RepositoryLockedError
from engines.jobs import JobContext
from engines.monitoring.watchdog import run_watchdog
from engines.repository.lock import RepositoryLock
from engines.scheduling.clock import Clock, configured_timezone, system_clock
from engines.scheduling.due_runs import (
    DueRun,
    RunGroup,
    group_runs,
    plan_due_runs,
    recover_interrupted_runs,
)
from engines.scheduling.schedules import (
    SCHEDULER_LOCK_NAME,
    schedules_from,
    takes_base_backup,
)
from engines.workspace import Workspace

logger = logging.getLogger("jarvis.scheduler")

WATCHDOG_INTERVAL_S = 300
SAFETY_TICK_S = 60
CANCEL_WAIT_S = 30.0
# The verb (engines.actions.verbs) each kind of schedule runs.
SCHEDULED_VERBS = {"backup": "backup-full", "cleanup": "cleanup", "drill": "drill"}
BASE_BACKUP_VERB = "backup-base"  # after a scheduled backup, by BACKUP_PITR_BASE_SCHEDULE
RESULT_OUTCOMES = {"complete": "succeeded", "partial": "partial", "failed": "failed"}

VerbRunner = Callable[[str, Workspace, Request, JobContext], str]
"""(verb, workspace, request, context) -> the run's result, inside the scheduler's job:
`run_scheduled` in this process, or the console's runner in a child process."""


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        *,
        purpose: str = "headless",
        clock: Clock = system_clock,
        run_verb: VerbRunner = run_scheduled,
    ):
        self.settings = settings
        self.zone = configured_timezone(settings)
        self.schedules = [s for s in schedules_from(settings, self.zone) if s.enabled]
        self.clock = clock
        self.purpose = purpose
        self.run_verb = run_verb
        self.workspace: Workspace | None = None
        self.dispatcher: AlertDispatcher | None = None
        # On a repository that went read-only (a disk remounted read-only after errors) the
        # schedules still run, so that each run fails with its alert instead of none running.
        self._election = RepositoryLock(
            settings.repository_dir,
            f"scheduler ({purpose})",
            name=SCHEDULER_LOCK_NAME,
            reading_only=True,
        )
        self._busy = threading.Lock()
        self._tick_lock = threading.Lock()
        self._stopping = threading.Event()
        self._current: JobContext | None = None
        self._current_label = ""
        self._timers: BackgroundScheduler | None = None
        self._started_at: datetime | None = None
        # Who won the election when this process lost it (its lock record), for standby lines.
        self.holder: dict | None = None

    # --- election and life cycle ---------------------------------------------------------

    @property
    def elected(self) -> bool:
        return self._election.held

    @property
    def current_job(self) -> tuple[int, str] | None:
        context = self._current
        return None if context is None else (context.job_id, self._current_label)

    def try_elect(self) -> bool:
        if self.elected:
            return True
        try:
            self._election.acquire()
        except RepositoryLockedError as error:
            self.holder = error.holder
            return False
        return True

    def start(self, *, timers: bool = True) -> bool:
        """Take the schedules if no other process has them; False when one does."""
        if not self.try_elect():
            return False
        try:
            self.workspace = Workspace.open(self.settings)
            self.workspace.catalog.mark_orphaned_jobs()
            self.dispatcher = AlertDispatcher(
                self.workspace.catalog, self.settings, clock=self.clock
            )
            recover_interrupted_runs(self.workspace.catalog, self.clock())
            self._started_at = self.clock()
            if timers:
                self._start_timers()
        except BaseException:
            self._release()
            raise
        names = ", ".join(f"{s.name} ({s.words})" for s in self.schedules) or "none enabled"
        logger.info("scheduler elected (%s); schedules: %s", self.purpose, names)
        return True

    def _start_timers(self) -> None:
        timers = BackgroundScheduler(
            timezone=self.zone,
            job_defaults={"coalesce": True, "max_instances": 8, "misfire_grace_time": None},
        )
        for schedule in self.schedules:
            timers.add_job(self.tick, schedule.trigger, id=schedule.name, name=schedule.name)
        timers.add_job(self.tick, DateTrigger(), id="catch-up")
        # APScheduler's cron wake-ups can miss a run at a daylight-saving change; this
        # one notices it within a minute (tick() itself decides what is due).
        timers.add_job(self.tick, IntervalTrigger(seconds=SAFETY_TICK_S), id="safety-tick")
        timers.add_job(self.watch, IntervalTrigger(seconds=WATCHDOG_INTERVAL_S), id="watchdog")
        timers.start()
        self._timers = timers

    def stop(self, grace_seconds: float | None = None) -> bool:
        """Start nothing new; let the running job finish for `grace_seconds`
        (BACKUP_SHUTDOWN_GRACE_SECONDS), then cancel it. False if it would not stop."""
        grace = (
            self.settings.backup_shutdown_grace_seconds if grace_seconds is None else grace_seconds
        )
        self._stopping.set()
        if self._timers is not None:
            self._timers.shutdown(wait=False)
            self._timers = None
        stopped = self._busy.acquire(timeout=grace) if grace > 0 else self._busy.acquire(False)
        if not stopped:
            context = self._current
            if context is not None:
                logger.warning(
                    "stopping: cancelling job %d (%s)", context.job_id, self._current_label
                )
                context.cancel()
            stopped = self._busy.acquire(timeout=CANCEL_WAIT_S)
        if stopped:
            self._busy.release()
            self._release()
        else:
            logger.error(
                "job %s did not stop within %.0f s; leaving it to the next start to mark",
                self.current_job,
                CANCEL_WAIT_S,
            )
        return stopped

    def _release(self) -> None:
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None
        self._election.release()

    # --- what is due ---------------------------------------------------------------------

    def tick(self) -> list[DueRun]:
        """Run whatever is due now (called at each cron time, at start, and by tests)."""
        if self._stopping.is_set() or self.workspace is None:
            return []
        with self._tick_lock:
            now = self.clock()
            due = plan_due_runs(
                self._catalog,
                self.schedules,
                now,
                baseline=self._started_at or now,
                grace_minutes=self.settings.backup_misfire_grace_minutes,
            )
            if not due:
                return []
            if not self._busy.acquire(blocking=False):
                for run in due:
                    self._record_skip(run, now)
                return due
        try:
            self._execute(due)
        finally:
            self._busy.release()
        return due

    def _record_skip(self, run: DueRun, now: datetime) -> None:
        label = self._current_label or "another job"
        detail = f"skipped: {label} was still running"
        self._catalog.finish_schedule_run(run.run_id, "skipped", now, detail=detail)
        logger.warning("%s run planned at %s %s", run.schedule.name, run.planned_at, detail)
        self._alert_skips(run.schedule.name, detail)

    def _alert_skips(self, name: str, detail: str) -> None:
        skips = self._catalog.consecutive_skips(name)
        if skips >= self.settings.backup_skip_alert_after:
            self.dispatcher.raise_condition(
                f"schedule_skipped:{name}",
                "warning",
                f"the {name} schedule was skipped {skips} times in a row ({detail})",
            )

    # --- running -------------------------------------------------------------------------

    def _execute(self, due: list[DueRun]) -> None:
        for group in group_runs(due):
            if self._stopping.is_set():
                for run in group.runs:
                    self._catalog.finish_schedule_run(
                        run.run_id, "skipped", self.clock(), detail="the scheduler was stopping"
                    )
                continue
            self._run_group(group)

    def _run_group(self, group: RunGroup) -> None:
        catalog = self._catalog
        started = self.clock()
        for run in group.runs:
            catalog.start_schedule_run(run.run_id, started)
        logger.info("starting %s", group.description)
        outcome, job_id, detail = self._run_job(group)
        logger.info("%s: %s%s", group.description, outcome, f" ({detail})" if detail else "")
        finished = self.clock()
        for run in group.runs:
            note = detail
            if len(group.runs) > 1 and run.schedule.name != group.tier:
                note = f"covered by the {group.tier} backup" + (f"; {detail}" if detail else "")
            catalog.finish_schedule_run(run.run_id, outcome, finished, job_id=job_id, detail=note)
            name = run.schedule.name
            if outcome == "skipped":
                self._alert_skips(name, detail)
                continue
            self.dispatcher.clear_condition(
                f"schedule_skipped:{name}", f"the {name} schedule ran again"
            )
            if outcome == "failed":
                self.dispatcher.raise_condition(
                    f"schedule_failed:{name}", "critical", f"{group.description} failed: {detail}"
                )
            elif outcome in ("succeeded", "partial"):
                self.dispatcher.clear_condition(
                    f"schedule_failed:{name}", f"{group.description} succeeded again"
                )

    def _run_job(self, group: RunGroup) -> tuple[str, int | None, str]:
        workspace = self.workspace
        job: dict[str, int] = {}

        def work(context: JobContext) -> str:
            job["id"] = context.job_id
            self._current, self._current_label = context, group.description
            try:
                return self._perform(group, workspace, context)
            finally:
                self._current, self._current_label = None, ""

        try:
            kind = VERBS[SCHEDULED_VERBS[group.action]].job_kind
            result = workspace.run_job(kind, group.description, work)
        except JobCancelledError as error:
            return "cancelled", job.get("id"), str(error)
        except RepositoryLockedError as error:
            return "skipped", job.get("id"), str(error)
        except JarvisError as error:
            return "failed", job.get("id"), str(error)
        except Exception as error:
            logger.exception("%s failed unexpectedly", group.description)
            return "failed", job.get("id"), f"unexpected error: {type(error).__name__}: {error}"
        return RESULT_OUTCOMES.get(result, "succeeded"), job.get("id"), ""

    def _perform(self, group: RunGroup, workspace: Workspace, context: JobContext) -> str:
        request = Request(tier=group.tier, created_at=self.clock(), dispatcher=self.dispatcher)
        result = self.run_verb(SCHEDULED_VERBS[group.action], workspace, request, context)
        if group.action == "backup" and takes_base_backup(
            self.settings.backup_pitr_base_schedule, group.tier
        ):
            result = self._base_backup(workspace, request, context, result)
        return result

    def _base_backup(
        self, workspace: Workspace, request: Request, context: JobContext, result: str
    ) -> str:
        """The base backup after the scheduled backup, in the same job (a set of its own;
        none unless the server archives here). Its failure leaves the run partial: the
        backup itself stands, and the base backup's own alert is raised."""
        context.raise_if_cancelled()
        request = replace(request, created_at=self.clock())
        try:
            base = self.run_verb(BASE_BACKUP_VERB, workspace, request, context)
        except JobCancelledError:
            raise
        except JarvisError as error:
            context.log(f"base backup: {error}", level="error")
            base = "failed"
        if base in ("skipped", "complete") or result == "failed":
            return result
        return "partial"

    # --- watchdog and recovery -----------------------------------------------------------

    def watch(self) -> list[str]:
        """Missing backups and disk space, then any alerts other engines left undelivered."""
        if self.workspace is None:
            return []
        try:
            problems = run_watchdog(self.settings, self._catalog, self.dispatcher, self.clock())
            self.dispatcher.deliver_pending()
        except JarvisError as error:
            logger.error("watchdog: %s", error)
            return [str(error)]
        return problems

    @property
    def _catalog(self):
        if self.workspace is None:
            raise RuntimeError("the scheduler is not started")
        return self.workspace.catalog
