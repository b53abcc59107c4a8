"""The maintenance jobs the console starts: retention preview and cleanup, prune, verify
every backup, the restore drill and catalog rebuild.

Each runs as the CLI runs it, as a catalogued job in its own process (`JobRunner.start`):
it shows in Jobs with its progress and can be cancelled there. The job is named in the
console's words (`Request.label`), not by the CLI's flags.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message
from textual.message_pump import MessagePump

from engines.actions.verbs import Request
from engines.catalog.aside import move_aside
from engines.errors import CatalogUnreadableError
from jarvis_tui.engine_access import EngineAccess
from jarvis_tui.job_process import ActionSpec, Outcome
from jarvis_tui.messages import (
    CatalogChanged,
    MaintenanceFailed,
    MaintenanceFinished,
    RetentionPlanFailed,
    RetentionPlanned,
)

if TYPE_CHECKING:
    from jarvis_tui.job_runner import JobRunner

Replies = list[tuple[MessagePump, Message]]


@dataclass(frozen=True)
class MaintenanceJob:
    verb: str
    title: str  # the job's name in Jobs and the notification's title
    request: Request


VERIFY_ALL = MaintenanceJob("verify-all", "verify every backup", Request())
VERIFY_ALL_DATA = MaintenanceJob(
    "verify-all", "verify every backup, reading every chunk", Request(read_data=True)
)
JOBS = {
    "cleanup": MaintenanceJob("cleanup", "cleanup", Request()),
    "prune": MaintenanceJob("prune", "prune the files store", Request()),
    "verify_all": VERIFY_ALL,
    "verify_all_data": VERIFY_ALL_DATA,
    "drill": MaintenanceJob("drill", "restore drill", Request()),
    "rebuild_catalog": MaintenanceJob("rebuild-catalog", "rebuild the catalog", Request()),
}


class MaintenanceJobs:
    def __init__(self, runner: "JobRunner"):
        self.runner = runner
        self.catalog_replaced = False  # the rebuild under way writes a new catalog file

    def plan_retention(self, reply_to: MessagePump) -> None:
        """cleanup's dry run: decides, deletes nothing; the plan goes to `reply_to`."""

        def finished(outcome: Outcome) -> Replies:
            if outcome.error is not None:
                return [(reply_to, RetentionPlanFailed(outcome.error))]
            return [(reply_to, RetentionPlanned(outcome.value))]

        request = Request(dry_run=True, label="retention preview (nothing is deleted)")
        self.runner.start(ActionSpec("cleanup", request), finished)

    def rebuild_catalog(self) -> None:
        """Catalog rebuild; a catalog SQLite cannot read is moved aside first (kept), as its
        error message asks. Only when this console failed to open it: then no connection
        of this process holds it."""
        app = self.runner.app

        def prepare() -> None:
            # A catalog missing or moved aside is replaced by a new file: whoever holds the
            # old one open (this console's panes and scheduler) must let go of it after.
            self.catalog_replaced = not app.settings.catalog_path.exists()
            try:
                app.access.catalog()
            except CatalogUnreadableError as error:
                self.catalog_replaced = True
                moved = move_aside(Path(str(error.path)), app.clock())
                app.call_from_thread(
                    app.notify,
                    f"The unreadable catalog was moved aside to {moved}; a new one is built.",
                    timeout=10,
                )
            except Exception:
                pass  # another problem (busy, no folder): the rebuild says it itself
            app.call_from_thread(self.run, "rebuild_catalog")

        app.run_worker(prepare, name="catalog set aside", thread=True, exit_on_error=False)

    def _reopen_catalog(self) -> None:
        """Read the rebuilt catalog: a catalog deleted while the console ran is still open
        here (its unlinked file), and the rebuild wrote a new file in its place. The
        scheduler opens it again too, unless a scheduled job runs (never cancelled for this:
        the next rebuild or start of the console puts things right)."""
        app = self.runner.app
        previous = app.access
        app.access = EngineAccess(app.settings)
        app.run_worker(previous.close, thread=True, group="settings")
        if self.catalog_replaced and app.scheduler.current_job is None:
            app.scheduler.restart()

    def run(self, name: str, approved: tuple[str, ...] | None = None) -> str:
        """Start the job `name` of JOBS; its outcome is notified. Returns its title.
        `approved`: cleanup deletes no other set (those the preview showed as DELETE)."""
        job = JOBS[name]
        app = self.runner.app

        def finished(outcome: Outcome) -> Replies:
            if job.verb == "rebuild-catalog" and outcome.error is None:
                app.call_from_thread(self._reopen_catalog)
            if outcome.error is not None:
                failed = MaintenanceFailed(job.title, outcome.error, outcome.cancelled)
                return [(app, failed), (app, CatalogChanged(f"{job.title} stopped"))]
            summary = outcome.value
            done = MaintenanceFinished(job.title, summary.lines, summary.failed)
            return [(app, done), (app, CatalogChanged(f"{job.title} finished"))]

        request = Request(
            dry_run=job.request.dry_run,
            read_data=job.request.read_data,
            label=job.title,
            approved=approved,
        )
        self.runner.start(ActionSpec(job.verb, request), finished)
        return job.title
