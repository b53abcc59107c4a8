"""Jobs: running and recent jobs of every process, the selected one's live log, cancel."""

from datetime import datetime, timedelta

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, ProgressBar, Static

from jarvis_tui.engine_access import Job, JobEvent
from jarvis_tui.formatting import (
    RATE_UNITS,
    age,
    amount,
    amount_of,
    duration,
    rate,
    short_moment,
    text_bar,
)
from jarvis_tui.messages import JobEventsLoaded
from jarvis_tui.screens.base import PaneScreen
from jarvis_tui.screens.confirm import ConfirmScreen
from jarvis_tui.widgets.row_table import RowTable
from jarvis_tui.widgets.wrapping_log import WrappingLog

LOG_POLL_SECONDS = 0.5
STATUS_STYLES = {
    "running": "bold yellow",
    "queued": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}
LEVEL_STYLES = {"error": "red", "warning": "yellow", "debug": "dim"}
COLUMNS = ("Job", "What", "Status", "Progress", "Elapsed", "Rate")
FIXED_WIDTHS = {"Job": 4, "Status": 9, "Progress": 15, "Elapsed": 10, "Rate": 10}
# Each column pads one cell on either side; the scrollbar takes two.
SPARE = 2 * len(COLUMNS) + 2


def elapsed_seconds(job: Job, now: datetime) -> float:
    if job.started_at is None:
        return 0.0
    end = job.finished_at or now
    return max(0.0, (end - job.started_at).total_seconds())


def job_progress(job: Job) -> Text:
    """What the job did, truthfully: full when it succeeded (a total is often an estimate),
    the word when it was cancelled, where it stopped when it failed."""
    if job.status == "succeeded":
        return Text(text_bar(1, 1))
    if job.status == "cancelled":
        return Text("cancelled", style=STATUS_STYLES["cancelled"])
    if job.progress_total:
        return Text(text_bar(job.progress_done, job.progress_total))
    if job.progress_done:
        return Text(amount(job.progress_done, job.progress_unit))
    return Text("")


def counted(job: Job) -> str:
    """` · 2 of 3 parts` for a job counted in parts or steps; empty for bytes."""
    if job.progress_unit in RATE_UNITS or not job.progress_total or job.finished:
        return ""
    return " · " + amount_of(job.progress_done, job.progress_total, job.progress_unit)


def job_cells(job: Job, now: datetime) -> tuple:
    seconds = elapsed_seconds(job, now)
    measured = job.progress_unit in RATE_UNITS
    return (
        str(job.id),
        job.description,
        Text(job.status, style=STATUS_STYLES.get(job.status, "")),
        job_progress(job),
        duration(timedelta(seconds=seconds)),
        rate(job.progress_done, seconds, job.progress_unit) if measured else "-",
    )


class JobsScreen(PaneScreen):
    PANE = "jobs"
    BINDINGS = [
        Binding("c", "cancel_job", "Cancel job"),
        Binding("l", "focus_log", "Log"),
        Binding("f5", "refresh", "Refresh", show=False),
        # The table's own keys; here too so they work from the log and Help lists them.
        Binding("g,home", "first_job", "First job (the newest)", show=False),
        Binding("G,end", "last_job", "Last job (the oldest)", show=False),
    ]

    def compose_pane(self) -> ComposeResult:
        yield RowTable(id="jobs-table", zebra_stripes=True)
        yield Static("No jobs yet: back up with b, or wait for a schedule.", id="job-head")
        yield ProgressBar(id="job-progress", show_eta=False)
        yield WrappingLog(id="job-log", max_lines=5000)

    def on_mount(self) -> None:
        self.selected_id: int | None = None
        self.last_event_id = 0
        self.shown_ids: list[int] = []
        self.newest_seen = 0
        self.what_width = 0
        self.query_one("#job-progress", ProgressBar).display = False
        if self.console.poll_seconds:
            self.set_interval(LOG_POLL_SECONDS, self._poll_log_if_visible)

    # -- the table of jobs ------------------------------------------------------------------

    def on_resize(self) -> None:
        self.jobs_changed(self.console.jobs)

    def _fit_columns(self, table: DataTable) -> bool:
        """Give the description what the fixed columns leave; True when columns changed."""
        what = max(16, self.size.width - sum(FIXED_WIDTHS.values()) - SPARE)
        if what == self.what_width:
            return False
        self.what_width = what
        table.clear(columns=True)
        for column in COLUMNS:
            table.add_column(column, key=column, width=FIXED_WIDTHS.get(column, what))
        self.shown_ids = []
        return True

    def jobs_changed(self, jobs: list[Job]) -> None:
        table = self.query_one("#jobs-table", DataTable)
        self._fit_columns(table)
        now = self.console.clock()
        ids = [job.id for job in jobs]
        if ids != self.shown_ids:
            newest_before = self.newest_seen
            table.clear()
            for job in jobs:
                table.add_row(*job_cells(job, now), key=str(job.id))
            self.shown_ids = ids
            self.newest_seen = max(newest_before, *ids, 0)
            if jobs and (jobs[0].id > newest_before or self.selected_id not in ids):
                # A job just started (here or elsewhere): follow it, at the top in view.
                self._select(jobs[0].id)
            if self.selected_id in ids:
                table.move_cursor(row=ids.index(self.selected_id))
        else:
            for job in jobs:
                for column, value in zip(COLUMNS, job_cells(job, now), strict=True):
                    table.update_cell(str(job.id), column, value)
        current = next((job for job in jobs if job.id == self.selected_id), None)
        if current is not None:
            self._show_head(current)

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._select(int(event.row_key.value))

    def _select(self, job_id: int) -> None:
        if job_id == self.selected_id:
            return
        self.selected_id = job_id
        self.last_event_id = 0
        self.query_one("#job-log", WrappingLog).clear()
        self.poll_log(job_id, 0)

    def _show_head(self, job: Job) -> None:
        now = self.console.clock()
        where = f"pid {job.pid} on {job.host}" if job.pid else "another process"
        head = Text.assemble(
            (f"Job {job.id} ", "bold"),
            job.description,
            " · ",
            (job.status, STATUS_STYLES.get(job.status, "")),
            counted(job),
            f" · started {age(job.started_at, now)} · {where}",
        )
        if job.cancel_requested and not job.finished:
            head.append(" · cancel requested", style="magenta")
        if job.error:
            head.append(f"\n{job.error}", style="red")
        self.query_one("#job-head", Static).update(head)
        bar = self.query_one("#job-progress", ProgressBar)
        if job.status == "succeeded":
            bar.display = True
            bar.update(total=1, progress=1)
        else:
            bar.display = bool(job.progress_total) and job.status != "cancelled"
            if bar.display:
                bar.update(total=job.progress_total, progress=job.progress_done)

    def action_first_job(self) -> None:
        self.query_one("#jobs-table", RowTable).action_scroll_top()

    def action_last_job(self) -> None:
        self.query_one("#jobs-table", RowTable).action_scroll_bottom()

    # -- the selected job's log -------------------------------------------------------------

    def _poll_log_if_visible(self) -> None:
        if self.app.screen is self and self.selected_id is not None:
            self.poll_log(self.selected_id, self.last_event_id)

    def action_refresh(self) -> None:
        self.console.poll_jobs()
        if self.selected_id is not None:
            self.poll_log(self.selected_id, self.last_event_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="job-log")
    def poll_log(self, job_id: int, after_id: int) -> None:
        try:
            catalog = self.console.access.catalog()
            events = catalog.job_events(job_id, after_id)
            job = catalog.get_job(job_id)
        except Exception:
            return  # the jobs poller reports an unreadable catalog; try again next tick
        self.post_message(JobEventsLoaded(job_id, events, job))

    def on_job_events_loaded(self, message: JobEventsLoaded) -> None:
        if message.job_id != self.selected_id:
            return
        fresh = [e for e in message.events if e.id > self.last_event_id]
        log = self.query_one("#job-log", WrappingLog)
        now = self.console.clock()
        for event in fresh:
            log.write(self._event_line(event, now))
        if fresh:
            self.last_event_id = fresh[-1].id
        if message.job is not None:
            self._show_head(message.job)

    def _event_line(self, event: JobEvent, now: datetime) -> Text:
        return Text.assemble(
            (f"{short_moment(event.at, now)} ", "dim"),
            (event.message, LEVEL_STYLES.get(event.level, "")),
        )

    def action_focus_log(self) -> None:
        self.query_one("#job-log", WrappingLog).focus()

    def action_cancel_job(self) -> None:
        job = next((j for j in self.console.jobs if j.id == self.selected_id), None)
        if job is None or job.finished:
            self.notify("Select a running job to cancel.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.console.runner.cancel(job.id)

        self.app.push_screen(
            ConfirmScreen(
                f"Cancel job {job.id}?",
                f"{job.description} stops at its next check. A cancelled backup leaves earlier "
                "backups as they were; a cancelled restore leaves the existing data as it was.",
                "Cancel the job",
            ),
            confirmed,
        )
