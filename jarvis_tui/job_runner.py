"""The jobs this console runs itself: each engine action in a worker thread.

Engine actions are imported inside the workers: they pull in database drivers
and the files store, which the first paint of the console does not need.

Every action goes through `EngineAccess.run_job`, so it is a catalogued job
with events, progress and cross-process cancellation, like a CLI or scheduler
run. Results travel back as past-tense messages to the screen that asked.
Actions are not exclusive workers on purpose: a second backup must not mark
the first one's worker cancelled while its thread carries on; the engine's
repository lock decides whether two jobs may run together.
"""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.message_pump import MessagePump
from textual.worker import WorkerState

from engines.catalog import BackupSet
from engines.errors import JarvisError, JobCancelledError
from engines.jobs import JobContext, JobFinished, JobStarted, JobUpdate
from engines.workspace import Workspace
from jarvis_tui.messages import (
    BackupFailed,
    BackupFinished,
    CatalogChanged,
    DeleteFailed,
    DryRunFailed,
    DryRunFinished,
    ExportFailed,
    ExportFinished,
    JobUpdated,
    RestoreFailed,
    RestoreFinished,
    SetDeleted,
    VerifyFailed,
    VerifyFinished,
)

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

JOB_GROUP = "jobs"
FULL_KIND = "full"


def failure_text(error: BaseException) -> str:
    if isinstance(error, JarvisError):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}"


def backup_action(kind: str, options: Any) -> Callable[[Workspace, JobContext], BackupSet]:
    """The engine action for `backup <kind>`: one source, or `full` for every source."""
    if kind == FULL_KIND:
        from engines.actions.backup_full import run_backup_full

        return lambda ws, ctx: run_backup_full(ws, ctx, tier="manual").backup_set
    from engines.actions.backup import run_backup

    return lambda ws, ctx: run_backup(ws, kind, options, ctx, tier="manual")


class JobRunner:
    def __init__(self, app: "JarvisConsole"):
        self.app = app
        self._lock = threading.Lock()
        self._own: set[int] = set()
        self._active: set[int] = set()

    # -- bookkeeping (called from job threads) ----------------------------------------------

    def _listener(self, reply_to: MessagePump | None) -> Callable[[JobUpdate], None]:
        def listen(update: JobUpdate) -> None:
            with self._lock:
                if isinstance(update, JobStarted):
                    self._own.add(update.job_id)
                    self._active.add(update.job_id)
                elif isinstance(update, JobFinished):
                    self._active.discard(update.job_id)
            if reply_to is not None:
                reply_to.post_message(JobUpdated(update))

        return listen

    def owns(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._own

    def running_jobs(self) -> list[int]:
        with self._lock:
            active = sorted(self._active)
        busy = [
            w
            for w in self.app.workers
            if w.group == JOB_GROUP and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        ]
        return active if busy else []

    def cancel_all(self) -> None:
        for job_id in self.running_jobs():
            self.cancel(job_id)

    def exit_when_idle(self) -> None:
        def check() -> None:
            if not self.running_jobs():
                self.app.exit()

        self.app.set_interval(0.2, check)

    # -- starting work ----------------------------------------------------------------------

    def _start(self, name: str, work: Callable[[], None]) -> None:
        self.app.run_worker(work, name=name, group=JOB_GROUP, thread=True, exit_on_error=False)

    def _post(self, target: MessagePump, message: Message) -> None:
        target.post_message(message)

    def backup(self, kind: str, options: Any = None, reply_to: MessagePump | None = None) -> None:
        target = reply_to or self.app

        def work() -> None:
            try:
                backup_set = self.app.access.run_job(
                    "backup",
                    f"backup {kind}",
                    backup_action(kind, options),
                    self._listener(reply_to),
                )
            except BaseException as error:
                self._post(target, BackupFailed(kind, failure_text(error)))
                return
            self._post(target, BackupFinished(backup_set))

        self._start(f"backup {kind}", work)

    def restore(self, kind: str, reference: str, options: Any, reply_to: MessagePump) -> None:
        dry_run = bool(getattr(options, "dry_run", False))
        description = f"restore {kind} {reference}" + (" (dry run)" if dry_run else "")

        def work() -> None:
            from engines.actions.restore import run_restore

            try:
                report = self.app.access.run_job(
                    "restore",
                    description,
                    lambda ws, ctx: run_restore(ws, kind, reference, options, ctx),
                    self._listener(reply_to),
                )
            except BaseException as error:
                text = failure_text(error)
                cancelled = isinstance(error, JobCancelledError)
                self._post(
                    reply_to, DryRunFailed(text) if dry_run else RestoreFailed(text, cancelled)
                )
                return
            self._post(reply_to, DryRunFinished(report) if dry_run else RestoreFinished(report))
            if not dry_run:
                self._post(self.app, CatalogChanged("restore finished"))

        self._start(description, work)

    def verify(self, set_id: str, reply_to: MessagePump) -> None:
        def work() -> None:
            from engines.actions.verify import verify_backup

            try:
                results = self.app.access.run_job(
                    "verify",
                    f"verify {set_id}",
                    lambda ws, ctx: verify_backup(ws, set_id, ctx),
                    self._listener(None),
                )
            except BaseException as error:
                self._post(reply_to, VerifyFailed(set_id, failure_text(error)))
                return
            problems = [p for result in results for p in result.report.problems]
            self._post(reply_to, VerifyFinished(set_id, problems))
            self._post(self.app, CatalogChanged("verified"))

        self._start(f"verify {set_id}", work)

    def export(
        self,
        relpaths: list[str],
        folder: Path,
        reply_to: MessagePump,
        *,
        as_sql: bool = False,
    ) -> None:
        """Decrypt each artifact into `folder`: its plain .gz, or with `as_sql` plain SQL."""

        def export_all(workspace, context) -> list[Path]:
            from engines.actions.decrypt import decrypt_to_file

            written = []
            for relpath in relpaths:
                context.raise_if_cancelled()
                if as_sql:
                    # PostgreSQL's own module, loaded only when plain SQL is asked for.
                    from engines.postgres.plain_sql import decrypt_to_sql

                    path = decrypt_to_sql(workspace, relpath, folder, context)
                else:
                    path = decrypt_to_file(workspace, relpath, folder)
                context.log(f"wrote {path}")
                written.append(path)
            return written

        def work() -> None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                paths = self.app.access.run_job(
                    "export",
                    f"export {len(relpaths)} artifact(s) to {folder}",
                    export_all,
                    self._listener(None),
                )
            except BaseException as error:
                self._post(reply_to, ExportFailed(failure_text(error)))
                return
            self._post(reply_to, ExportFinished(paths))

        self._start("export", work)

    def delete(self, set_id: str, reply_to: MessagePump) -> None:
        def work() -> None:
            from engines.actions.delete_set import delete_backup_set

            try:
                self.app.access.run_job(
                    "delete",
                    f"delete {set_id}",
                    lambda ws, ctx: delete_backup_set(ws, set_id, ctx),
                    self._listener(None),
                )
            except BaseException as error:
                self._post(reply_to, DeleteFailed(set_id, failure_text(error)))
                return
            self._post(reply_to, SetDeleted(set_id))

        self._start(f"delete {set_id}", work)

    def cancel(self, job_id: int) -> None:
        def work() -> None:
            try:
                asked = self.app.access.catalog().request_job_cancel(job_id)
            except BaseException as error:
                self.app.call_from_thread(
                    self.app.notify,
                    f"Could not cancel job {job_id}: {failure_text(error)}",
                    severity="error",
                )
                return
            note = "cancel requested" if asked else "already finished"
            self.app.call_from_thread(self.app.notify, f"Job {job_id}: {note}", timeout=4)

        self.app.run_worker(work, name=f"cancel {job_id}", thread=True, exit_on_error=False)
