"""The jobs this console runs itself: each engine action in a process of its own.

A worker thread starts the process (`job_process`) and waits for it, relaying
its JobContext updates to the screen that asked; the outcome comes back as a
past-tense message. Every action is a catalogued job with events, progress and
cross-process cancellation, like a CLI or scheduler run. Actions are not
exclusive workers on purpose: a second backup must not mark the first one's
worker cancelled while its process carries on; the engine's repository lock
decides whether two jobs may run together.

The processes outlive the console (job_process runs them detached): quitting may
leave them running (`let_go`), or cancel them first, also one whose catalog row
does not exist yet (it is cancelled as soon as it has one).
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.message_pump import MessagePump

from engines.actions.verbs import Request
from engines.destinations import copy_destinations
from engines.jobs import JobFinished, JobStarted, JobUpdate
from engines.plumbing.error_text import error_text
from jarvis_tui.job_process import ActionSpec, Outcome, run_in_process
from jarvis_tui.messages import (
    BackupFailed,
    BackupFinished,
    CatalogChanged,
    DeleteFailed,
    DryRunFailed,
    DryRunFinished,
    ExportFailed,
    ExportFinished,
    FullRestoreFailed,
    FullRestoreFinished,
    JobUpdated,
    KeyRotated,
    PullFailed,
    PullFinished,
    RekeyFailed,
    RestoreFailed,
    RestoreFinished,
    SetDeleted,
    SyncFailed,
    SyncFinished,
    VerifyFailed,
    VerifyFinished,
)

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

JOB_GROUP = "jobs"


def backup_options(kind: str, postgres_mode: str, incremental: bool) -> tuple[Any, str | None]:
    """The source's backup options and the job's words, as the command line has them."""
    if kind == "postgres":
        from engines.postgres.options import PostgresBackupOptions

        return PostgresBackupOptions(mode=postgres_mode), f"backup postgres ({postgres_mode})"
    if kind == "files":
        from engines.store.backup import FilesBackupOptions

        return FilesBackupOptions(incremental=incremental), (
            "backup files (incremental)" if incremental else None
        )
    return None, None


@dataclass
class _Run:
    """One job process this console started, from its start until it ends."""

    description: str
    job_id: int | None = None  # once the process has created its catalog row
    ended: bool = False
    cancel_wanted: bool = False  # asked before the row existed: cancelled once it does


class JobRunner:
    def __init__(self, app: "JarvisConsole"):
        self.app = app
        self._lock = threading.Lock()
        self._own: set[int] = set()
        self._runs: list[_Run] = []
        self._let_go = threading.Event()

    # -- bookkeeping (called from job threads) ----------------------------------------------

    def _listener(self, reply_to: MessagePump | None, run: _Run) -> Callable[[JobUpdate], None]:
        def listen(update: JobUpdate) -> None:
            cancel_now = False
            with self._lock:
                if isinstance(update, JobStarted):
                    self._own.add(update.job_id)
                    run.job_id = update.job_id
                    cancel_now = run.cancel_wanted
                elif isinstance(update, JobFinished) and update.job_id == run.job_id:
                    run.ended = True
            if cancel_now:
                self._request_cancel(update.job_id)
            if reply_to is not None:
                reply_to.post_message(JobUpdated(update))

        return listen

    def owns(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._own

    def _going(self) -> list[_Run]:
        with self._lock:
            return [run for run in self._runs if not run.ended]

    def running_jobs(self) -> list[int]:
        """The catalog ids of this console's jobs still going."""
        return sorted(run.job_id for run in self._going() if run.job_id is not None)

    def running(self) -> list[str]:
        """What each job process this console started and still going does ("backup
        files"), also one that has not created its catalog row yet."""
        return [run.description for run in self._going()]

    def cancel_all(self) -> None:
        with self._lock:
            for run in self._runs:
                run.cancel_wanted = True
            started = [run.job_id for run in self._runs if not run.ended and run.job_id]
        for job_id in started:
            self.cancel(job_id)

    def exit_when_idle(self) -> None:
        """Quit once every job process has ended and its outcome has been posted."""

        def check() -> None:
            with self._lock:
                idle = not self._runs
            if idle:
                self.app.exit()

        self.app.set_interval(0.2, check)

    def let_go(self) -> list[str]:
        """The console is quitting and leaves its jobs running: stop following them (their
        processes carry on alone); what each one does."""
        going = self.running()
        self._let_go.set()
        return going

    # -- starting work ----------------------------------------------------------------------

    def _run(
        self,
        spec: ActionSpec,
        reply_to: MessagePump | None,
        finished: Callable[[Outcome], list[tuple[MessagePump, Message]]],
    ) -> None:
        """Run `spec` in its own process from a worker thread; post what `finished` says."""
        run = _Run(spec.job[1])
        with self._lock:
            self._runs.append(run)
        listener = self._listener(reply_to, run)
        env_file = self.app.env_file

        def work() -> None:
            try:
                outcome = run_in_process(env_file, spec, listener, let_go=self._let_go)
                # Left running: the console is quitting, nobody is left to tell.
                for target, message in [] if outcome.left_running else finished(outcome):
                    target.post_message(message)
            finally:
                with self._lock:
                    self._runs.remove(run)

        self.app.run_worker(
            work, name=spec.job[1], group=JOB_GROUP, thread=True, exit_on_error=False
        )

    def start(
        self,
        spec: ActionSpec,
        finished: Callable[[Outcome], list[tuple[MessagePump, Message]]],
    ) -> None:
        """Any verb as a console job (the maintenance jobs start theirs here)."""
        self._run(spec, None, finished)

    def backup(
        self,
        kind: str,
        reply_to: MessagePump | None = None,
        *,
        postgres_mode: str = "full",
        incremental: bool = True,
    ) -> None:
        """Back up `kind` (or `full`). PostgreSQL dumps `postgres_mode` (full, schema, data);
        the files backup reads only what changed since the last snapshot unless
        `incremental` is off, as `backup files --incremental` does."""
        target = reply_to or self.app

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(target, BackupFailed(kind, outcome.error, outcome.cancelled))]
            return [(target, BackupFinished(outcome.value))]

        verb = "backup-full" if kind == "full" else "backup"
        options, label = backup_options(kind, postgres_mode, incremental)
        spec = ActionSpec(verb, Request(kind=kind, options=options, label=label))
        self._run(spec, reply_to, finished)

    def restore(self, kind: str, reference: str, options: Any, reply_to: MessagePump) -> None:
        dry_run = bool(getattr(options, "dry_run", False))

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                failed = (
                    DryRunFailed(outcome.error)
                    if dry_run
                    else RestoreFailed(outcome.error, outcome.cancelled)
                )
                return [(reply_to, failed)]
            if dry_run:
                return [(reply_to, DryRunFinished(outcome.value))]
            return [
                (reply_to, RestoreFinished(outcome.value)),
                (self.app, CatalogChanged("restore finished")),
            ]

        spec = ActionSpec("restore", Request(kind=kind, reference=reference, options=options))
        self._run(spec, reply_to, finished)

    def restore_full(self, reference: str, app_stopped: bool, reply_to: MessagePump) -> None:
        """`restore full REFERENCE` as one job; `app_stopped`: the operator marked the
        application stopped (needed when JARVIS_STOP_COMMAND is not set)."""
        from engines.actions.restore_full import FullRestoreOptions

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [
                    (reply_to, FullRestoreFailed(outcome.error, outcome.cancelled)),
                    (self.app, CatalogChanged("restore full stopped")),
                ]
            return [
                (reply_to, FullRestoreFinished(outcome.value)),
                (self.app, CatalogChanged("restore full finished")),
            ]

        options = FullRestoreOptions(app_stopped=app_stopped)
        request = Request(reference=reference, options=options)
        self._run(ActionSpec("restore-full", request), reply_to, finished)

    def pull(self, reference: str, reply_to: MessagePump) -> None:
        """Download into the repository what it lacks of the set `reference` (`pull SET`)."""

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(reply_to, PullFailed(outcome.error))]
            line, problems = outcome.value
            return [(reply_to, PullFinished(line, problems)), (self.app, CatalogChanged("pulled"))]

        self._run(ActionSpec("pull", Request(reference=reference)), reply_to, finished)

    def verify(self, set_id: str, reply_to: MessagePump, *, read_data: bool = False) -> None:
        """Verify a set; with `read_data` every chunk of a files snapshot is read too."""

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(reply_to, VerifyFailed(set_id, outcome.error))]
            return [
                (reply_to, VerifyFinished(set_id, outcome.value)),
                (self.app, CatalogChanged("verified")),
            ]

        label = f"verify {set_id}, reading every chunk" if read_data else None
        request = Request(reference=set_id, read_data=read_data, label=label)
        self._run(ActionSpec("verify", request), None, finished)

    def export(
        self,
        relpaths: list[str],
        folder: Path,
        reply_to: MessagePump,
        *,
        as_sql: bool = False,
    ) -> None:
        """Decrypt each artifact into `folder`: its plain .gz, or with `as_sql` plain SQL."""

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(reply_to, ExportFailed(outcome.error))]
            return [(reply_to, ExportFinished(outcome.value))]

        request = Request(relpaths=tuple(relpaths), output=folder, as_sql=as_sql)
        spec = ActionSpec("export", request)
        self._run(spec, None, finished)

    def rekey(self, reply_to: MessagePump) -> None:
        """Seal every backup made under an earlier key again under the current one (after
        the key was rotated), as `rekey` does."""

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(reply_to, RekeyFailed(outcome.error, outcome.cancelled))]
            return [(reply_to, KeyRotated(outcome.value)), (self.app, CatalogChanged("rekeyed"))]

        self._run(ActionSpec("rekey", Request()), None, finished)

    def delete(self, set_id: str, reply_to: MessagePump) -> None:
        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(reply_to, DeleteFailed(set_id, outcome.error))]
            return [(reply_to, SetDeleted(set_id))]

        self._run(ActionSpec("delete", Request(reference=set_id)), None, finished)

    def sync(self, reply_to: MessagePump) -> bool:
        """Push what each copy destination lacks; False (nothing started) when none is set."""
        if not copy_destinations(self.app.access.settings):
            return False

        def finished(outcome: Outcome) -> list[tuple[MessagePump, Message]]:
            if outcome.error is not None:
                return [(reply_to, SyncFailed(outcome.error))]
            lines = [line for line, _ in outcome.value]
            failed = any(failed for _, failed in outcome.value)
            return [
                (reply_to, SyncFinished(lines, failed)),
                (self.app, CatalogChanged("synced")),
            ]

        self._run(ActionSpec("sync", Request()), None, finished)
        return True

    def _request_cancel(self, job_id: int) -> None:
        """Blocking: ask the job's process, through the catalog, to stop; say how it went."""
        try:
            asked = self.app.access.catalog().request_job_cancel(job_id)
        except BaseException as error:
            self.app.call_from_thread(
                self.app.notify,
                f"Could not cancel job {job_id}: {error_text(error)}",
                severity="error",
            )
            return
        note = "cancel requested" if asked else "already finished"
        self.app.call_from_thread(self.app.notify, f"Job {job_id}: {note}", timeout=4)

    def cancel(self, job_id: int) -> None:
        self.app.run_worker(
            lambda: self._request_cancel(job_id),
            name=f"cancel {job_id}",
            thread=True,
            exit_on_error=False,
        )
