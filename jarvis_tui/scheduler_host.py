"""The in-process scheduler: the console runs the schedules unless another process does.

Which process fires the schedules is the engine's decision (one scheduler per
repository, elected by a lock): this starts the engine's scheduler in a worker,
stands by while another process (`--run-scheduled`, another console) holds it,
and tries again every RETRY_SECONDS so it takes over once that process is gone.
The backups, cleanups and restore drills it fires run in a child process
(`verbs_in_child`), so that the screen stays responsive through them.
"""

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engines.errors import JarvisError, JobCancelledError, RepositoryLockedError
from engines.plumbing.error_text import error_text
from jarvis_tui.job_process import ActionSpec, run_in_process

if TYPE_CHECKING:
    from textual.timer import Timer

    from engines.actions.verbs import Request
    from engines.jobs import JobContext
    from engines.scheduling.scheduler import Scheduler
    from engines.workspace import Workspace
    from jarvis_tui.app import JarvisConsole

RETRY_SECONDS = 15.0
WAIT_POLL_SECONDS = 1.0
GROUP = "scheduler"


def verbs_in_child(
    env_file: Path | None,
) -> Callable[[str, "Workspace", "Request", "JobContext"], str]:
    """The scheduler's verbs (backup, cleanup, restore drill), each run in a process of
    its own inside the scheduler's job.

    In the console's process the engines' threads would freeze the screen for as
    long as a nightly backup takes. When the scheduler stops, its cancel reaches
    the child through the catalog, as any cancel does.
    """

    def run_verb(
        verb: str, workspace: "Workspace", request: "Request", context: "JobContext"
    ) -> str:
        asked = False

        def pass_on_stop() -> None:
            nonlocal asked
            if not asked and context.cancel_event.is_set():
                workspace.catalog.request_job_cancel(context.job_id)
                asked = True

        # The child opens its own alert dispatcher, as it opens its own catalog.
        spec = ActionSpec(verb, replace(request, dispatcher=None), job_id=context.job_id)
        outcome = run_in_process(env_file, spec, lambda update: None, pass_on_stop)
        if outcome.cancelled:
            raise JobCancelledError(outcome.error or "cancelled by request")
        if outcome.locked:  # skipped, as in the scheduler's own process
            raise RepositoryLockedError(outcome.error)
        if outcome.error is not None:
            raise JarvisError(outcome.error)
        return str(outcome.value)

    return run_verb


def holder_name(holder: dict) -> str:
    """`headless` for a holder whose purpose reads `scheduler (headless)`."""
    purpose = str(holder.get("purpose") or "another process")
    return purpose.removeprefix("scheduler (").removesuffix(")")


class SchedulerHost:
    def __init__(self, app: "JarvisConsole", *, enabled: bool):
        self.app = app
        self.enabled = enabled
        self.scheduler: Scheduler | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._waiting: Timer | None = None  # a restart waiting for a scheduled job to end

    @property
    def current_job(self) -> tuple[int, str] | None:
        scheduler = self.scheduler
        return scheduler.current_job if scheduler is not None else None

    def start(self) -> None:
        if not self.enabled:
            self.app.set_scheduler_note("no scheduler here")
            return
        if self.app.settings.browsing:  # another host's backups: its schedules are its own
            self.app.set_scheduler_note("browsing read-only: no schedules run here")
            return
        self._stopped = False
        self.app.run_worker(
            self._elect, name="scheduler", group=GROUP, thread=True, exit_on_error=False
        )

    def _elect(self) -> None:
        from engines.scheduling.scheduler import Scheduler
        from engines.scheduling.schedules import scheduler_holder

        settings = self.app.settings
        with self._lock:
            if self._stopped or self.scheduler is not None:
                return
            scheduler = Scheduler(
                settings, purpose="console", run_verb=verbs_in_child(self.app.env_file)
            )
            try:
                elected = scheduler.start()
            except Exception as error:  # shown, and tried again later
                self._note(f"scheduler failed: {error_text(error)}")
                self._retry_later()
                return
            if elected:
                self.scheduler = scheduler
                self._note("schedules run here")
                return
        holder = scheduler_holder(settings) or {}
        self._note(f"schedules: {holder_name(holder)} pid {holder.get('pid', '?')}")
        self._retry_later()

    def _note(self, text: str) -> None:
        self.app.call_from_thread(self.app.set_scheduler_note, text)

    def _retry_later(self) -> None:
        def again() -> None:
            if not self._stopped:
                self.start()

        self.app.call_from_thread(self.app.set_timer, RETRY_SECONDS, again)

    def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop firing; a scheduled job still running is cancelled (it stops safely)."""
        self._stopped = True
        with self._lock:
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.stop(grace_seconds)

    def restart(self, *, cancel_running: bool = False) -> None:
        """New settings: let go of the schedules and take them again under the new ones.

        A scheduled job running now goes on under the settings it started with, and the
        schedules are taken again once it has ended; only `cancel_running` (settings that
        move the backups, as the operator confirmed) cancels it at once.
        """
        if not self.enabled:
            return
        if self._waiting is not None:
            self._waiting.stop()
            self._waiting = None
        if self.current_job is not None and not cancel_running:
            self._waiting = self.app.set_interval(WAIT_POLL_SECONDS, self._restart_when_idle)
            return

        def cycle() -> None:
            self.stop()
            self.app.call_from_thread(self.start)

        self.app.run_worker(
            cycle, name="scheduler restart", group=GROUP, thread=True, exit_on_error=False
        )

    def _restart_when_idle(self) -> None:
        if self._stopped or self.current_job is None:
            if self._waiting is not None:
                self._waiting.stop()
                self._waiting = None
            if not self._stopped:
                self.restart()
