"""Starting a verb as a job from the API, and refusing one that would collide.

The job runs in the process the console starts for its own jobs (job_process): a
fresh interpreter in a session of its own, so it outlives the API server; its log,
progress and end are in the catalog like any job's. The request is answered once the
job has its catalog row (202 with its id), not when it ends. A thread per job keeps
reading the job's pipe until it ends, so the child is reaped and never blocks.

Starts are serialised in this server (a lock) and among every server on the same
catalog (an flock on a file beside it, `<catalog>.starting`), and each checks the
catalog's running jobs (any process's: the CLI's, the console's, the scheduler's)
against the caller's idea of a conflict, so two requests at once, to one server or two,
never both start a backup.
"""

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel

from engines.catalog.rows import Job
from engines.jobs import JobStarted, JobUpdate
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.errors import ApiError, conflict
from jarvis_tui.job_process import ActionSpec, Outcome, run_in_process

START_TIMEOUT_S = 120.0

_starting = threading.Lock()


class JobAccepted(BaseModel):
    job_id: int
    kind: str
    description: str
    status_url: str  # poll it: GET /api/jobs/{job_id}


class JobLaunch:
    """One job process, from its start until it ends, read on its own thread."""

    def __init__(self, context: ApiContext, spec: ActionSpec):
        self.started = threading.Event()
        self.job: JobStarted | None = None
        self.outcome: Outcome | None = None
        self._thread = threading.Thread(
            target=self._run, args=(context, spec), name="jarvis-api-job", daemon=True
        )

    def _run(self, context: ApiContext, spec: ActionSpec) -> None:
        try:
            self.outcome = run_in_process(context.env_file, spec, self._on_update)
        finally:
            self.started.set()

    def _on_update(self, update: JobUpdate) -> None:
        if isinstance(update, JobStarted) and self.job is None:
            self.job = update
            self.started.set()

    def ended(self, timeout_s: float) -> Outcome | None:
        """The job's outcome once its process ended within `timeout_s`; None while it runs."""
        self._thread.join(timeout_s)
        return None if self._thread.is_alive() else self.outcome

    def start(self) -> JobStarted:
        self._thread.start()
        if not self.started.wait(START_TIMEOUT_S):
            raise ApiError(503, "not_started", "the job's process did not start in time; try again")
        if self.job is not None:
            return self.job
        outcome = self.outcome or Outcome(error="the job's process ended without a result")
        if outcome.locked:
            raise conflict(f"the repository is busy: {outcome.error}")
        raise ApiError(409, "not_started", outcome.error or "the job did not start")


@contextlib.contextmanager
def _one_start_at_a_time(catalog: Path) -> Iterator[None]:
    """Held from the check of the running jobs until the new job has its row."""
    with _starting:
        # O_CLOEXEC: a job process must not inherit the lock (flock follows the file).
        fd = os.open(f"{catalog}.starting", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def start_job(
    context: ApiContext,
    spec: ActionSpec,
    conflicts: Callable[[Job], bool],
) -> JobAccepted:
    """Start `spec` as a job unless a running job conflicts with it (409 naming it)."""
    return start_job_watched(context, spec, conflicts)[0]


def start_job_watched(
    context: ApiContext,
    spec: ActionSpec,
    conflicts: Callable[[Job], bool],
) -> tuple[JobAccepted, JobLaunch]:
    """`start_job`, and the launch to wait on for the job's outcome (`ended`)."""
    with _one_start_at_a_time(context.catalog.path):
        catalog = context.catalog
        catalog.mark_orphaned_jobs()
        for job in catalog.unfinished_jobs():
            if conflicts(job):
                raise conflict(
                    f"job {job.id} ({job.description}) is running; wait for it "
                    f"(GET /api/jobs/{job.id}) and try again"
                )
        launch = JobLaunch(context, spec)
        started = launch.start()
    accepted = JobAccepted(
        job_id=started.job_id,
        kind=started.kind,
        description=started.description,
        status_url=f"/api/jobs/{started.job_id}",
    )
    return accepted, launch
