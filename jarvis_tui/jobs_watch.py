"""Jobs of every process, seen through the catalog: one poller for the whole console.

The panes follow its result through the app's `jobs_signal`; a job seen ending
(whichever process ran it) refreshes what shows backups and is announced,
unless this console started it, in which case its own screen reports it.
"""

from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.signal import Signal

from engines.catalog import Job
from jarvis_tui.messages import JobEnded, JobsPolled, WorkspaceFailed

if TYPE_CHECKING:
    from jarvis_tui.engine_access import EngineAccess
    from jarvis_tui.job_runner import JobRunner

JOBS_SHOWN = 100
# Jobs whose end changes what the catalog pane and the dashboard show.
CATALOG_JOB_KINDS = ("backup", "verify", "restore", "cleanup", "delete")


class JobsWatch(App):
    access: "EngineAccess"
    runner: "JobRunner"
    jobs: list[Job]
    jobs_signal: Signal
    catalog_signal: Signal
    _jobs_polled_once: bool

    @work(thread=True, exclusive=True, exit_on_error=False, group="poll-jobs")
    def poll_jobs(self) -> None:
        try:
            jobs = self.access.catalog().list_jobs(limit=JOBS_SHOWN)
        except Exception as error:
            self.post_message(WorkspaceFailed("jobs", str(error) or type(error).__name__))
            return
        self.post_message(JobsPolled(jobs))

    def on_jobs_polled(self, message: JobsPolled) -> None:
        previous = {job.id: job for job in self.jobs}
        newest_seen = max(previous, default=0)
        if self._jobs_polled_once:
            for job in message.jobs:
                before = previous.get(job.id)
                ended_now = before is not None and not before.finished
                if job.finished and (ended_now or job.id > newest_seen):
                    self.post_message(JobEnded(job))
        self._jobs_polled_once = True
        self.jobs = message.jobs
        self.jobs_signal.publish(message.jobs)

    def on_job_ended(self, message: JobEnded) -> None:
        job = message.job
        if job.kind in CATALOG_JOB_KINDS:
            self.catalog_signal.publish(f"job {job.id} ended")
        if self.runner.owns(job.id):
            return  # the screen that started it reports the outcome itself
        severity = {"succeeded": "information", "cancelled": "warning"}.get(job.status, "error")
        detail = f": {job.error}" if job.error else ""
        self.notify(f"Job {job.id} {job.description} {job.status}{detail}", severity=severity)
