"""The restore itself (progress, live log, cancel) and its result with what to do next."""

import re
import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Button, ProgressBar, RichLog, Static

from jarvis_tui.engine_access import JobLogged, JobProgressed, JobStarted, JobUpdate
from jarvis_tui.formatting import amount, rate
from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wrapping_log import WrappingLog

# How run_job words a job's last log line; the step says how the job ended itself.
JOB_END_LINE = re.compile(r"^(succeeded|failed|cancelled) (in|after) ")


class RunStep(WizardStep):
    TITLE = "Run"
    can_go_back = False

    def compose(self) -> ComposeResult:
        yield Static("", id="run-state", classes="step-intro")
        yield ProgressBar(id="run-progress", show_eta=False)
        yield Static("", id="run-rate", classes="muted")
        yield WrappingLog(id="run-log")
        yield Button("Cancel restore", id="run-cancel", variant="error", compact=True)

    def on_mount(self) -> None:
        self.started = False
        self.elapsed_from: float | None = None

    def reset(self) -> None:
        """Forget a run that failed, so the next one starts afresh."""
        self.started = False
        self.elapsed_from = None
        self.query_one("#run-log", RichLog).clear()
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#run-cancel", Button).display = True

    def enter(self) -> None:
        if self.started:
            return
        self.started = True
        wizard = self.wizard
        wizard.running = True
        wizard.refresh_buttons()
        self.query_one("#run-state", Static).update(wizard.running_words())
        assert wizard.reference is not None
        wizard.console.runner.restore(
            wizard.KIND, wizard.reference, wizard.engine_options(dry_run=False), wizard
        )

    def job_updated(self, update: JobUpdate) -> None:
        if not self.started:
            return  # the dry run's job, reported to the same wizard
        if isinstance(update, JobStarted):
            self.wizard.job_id = update.job_id
            self.elapsed_from = time.monotonic()
        elif update.job_id != self.wizard.job_id:
            return
        elif isinstance(update, JobLogged) and not JOB_END_LINE.match(update.message):
            style = {"error": "red", "warning": "yellow", "debug": "dim"}.get(update.level, "")
            self.query_one("#run-log", RichLog).write(Text(update.message, style=style))
        elif isinstance(update, JobProgressed):
            bar = self.query_one("#run-progress", ProgressBar)
            bar.update(total=update.total, progress=update.done)
            seconds = time.monotonic() - (self.elapsed_from or time.monotonic())
            self.query_one("#run-rate", Static).update(
                f"{amount(update.done, update.unit)} · {rate(update.done, seconds, update.unit)}"
            )

    def ended(self, outcome: str) -> None:
        """The restore is over: say how, and let the operator go on to the result."""
        bar = self.query_one("#run-progress", ProgressBar)
        if outcome == "succeeded":
            bar.update(total=100, progress=100)
        else:
            bar.display = False
        self.query_one("#run-cancel", Button).display = False
        self.query_one("#run-rate", Static).update("")
        styles = {"succeeded": "bold green", "cancelled": "bold yellow"}
        again = "" if outcome == "succeeded" else " Back returns to the choices."
        self.query_one("#run-state", Static).update(
            Text(
                f"The restore {outcome}. Next shows the result and what to do now.{again}",
                style=styles.get(outcome, "bold red"),
            )
        )

    @on(Button.Pressed, "#run-cancel")
    def _cancel(self) -> None:
        if self.wizard.job_id is not None:
            self.wizard.console.runner.cancel(self.wizard.job_id)

    def log_lines(self) -> list[str]:
        return [strip.text.rstrip() for strip in self.query_one("#run-log", RichLog).lines]


class ResultStep(WizardStep):
    TITLE = "Result"
    can_go_back = False
    next_label = "Close"

    def compose(self) -> ComposeResult:
        yield Static("", id="result-heading", classes="step-intro")
        with VerticalScroll(id="result-body"):
            yield Static("", id="result-report")
            yield Static("", id="result-next")

    def enter(self) -> None:
        wizard = self.wizard
        outcome = wizard.outcome or "failed"
        styles = {"succeeded": "bold green", "cancelled": "bold yellow"}
        headings = {
            "succeeded": f"Restore of {wizard.target_name()} succeeded.",
            "cancelled": f"Restore cancelled: {wizard.target_name()} was left as it was.",
            "failed": f"Restore failed: {wizard.failure or 'see the job log'}",
        }
        self.query_one("#result-heading", Static).update(
            Text(headings.get(outcome, outcome), style=styles.get(outcome, "bold red"))
        )
        report = Text()
        if wizard.report is not None:
            report.append("What the engine did and checked\n", style="bold")
            for line in wizard.report.lines:
                report.append(f"  {line}\n")
            for warning in wizard.report.warnings:
                report.append(f"  warning: {warning}\n", style="yellow")
        log_tail = [line for s in wizard.steps if isinstance(s, RunStep) for line in s.log_lines()]
        if log_tail:
            report.append("From the job log\n", style="bold")
            for line in log_tail[-4:]:
                report.append(f"  {line}\n", style="dim")
        self.query_one("#result-report", Static).update(report)
        follow = Text()
        follow.append("What to do next\n", style="bold")
        for line in wizard.next_steps():
            follow.append(f"  • {line}\n")
        self.query_one("#result-next", Static).update(follow)
        self.wizard.query_one("#next").focus()
