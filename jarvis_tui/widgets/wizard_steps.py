"""The steps every restore wizard shares: pick a backup, dry run, confirm, run, result."""

import re
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Button, DataTable, Input, ProgressBar, RichLog, Static

from engines.jobs import JobLogged, JobProgressed, JobStarted, JobUpdate
from jarvis_tui.formatting import amount, local_moment, rate
from jarvis_tui.messages import RestorableSetsLoaded, WorkspaceFailed
from jarvis_tui.output import human_size
from jarvis_tui.restorable import RestorableSet, restorable_sets
from jarvis_tui.screens.wizard import WizardStep

REFUSED_PREFIX = "plan: refused"


class BackupPickStep(WizardStep):
    TITLE = "Backup"

    def compose(self) -> ComposeResult:
        yield Static("", id="pick-intro", classes="step-intro")
        table = DataTable(id="pick-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("Backup", "Created", "Size", "Contents")
        yield table
        yield Static("", id="pick-note", classes="muted")

    def on_mount(self) -> None:
        self.choices: list[RestorableSet] = []
        self.loaded = False
        kind = self.wizard.KIND
        self.query_one("#pick-intro", Static).update(
            f"Pick the {kind} backup to restore (good backups, newest first); enter goes on."
        )
        self.query_one("#pick-note", Static).update(self.wizard.moment_note())

    def enter(self) -> None:
        if not self.loaded:
            self.load()
        self.query_one("#pick-table", DataTable).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="restorable")
    def load(self) -> None:
        kind = self.wizard.KIND
        try:
            choices = restorable_sets(self.wizard.console.access.catalog(), kind)
        except Exception as error:
            self.post_message(WorkspaceFailed("backups", str(error) or type(error).__name__))
            return
        self.post_message(RestorableSetsLoaded(choices))

    def on_restorable_sets_loaded(self, message: RestorableSetsLoaded) -> None:
        self.loaded = True
        self.choices = message.sets
        table = self.query_one("#pick-table", DataTable)
        table.clear()
        for choice in self.choices:
            backup_set = choice.backup_set
            table.add_row(
                backup_set.id,
                local_moment(backup_set.created_at),
                human_size(backup_set.stored_size),
                self.wizard.describe_backup(choice.metadata),
                key=backup_set.id,
            )
        if not self.choices:
            self.query_one("#pick-intro", Static).update(
                f"There is no good {self.wizard.KIND} backup in the catalog yet. Leave with "
                "escape and make one with b (back up now)."
            )
        wanted = self.wizard.preselected_set
        if wanted:
            ids = [c.backup_set.id for c in self.choices]
            if wanted in ids:
                table.move_cursor(row=ids.index(wanted))
            else:
                self.wizard.say(f"{wanted} holds no complete {self.wizard.KIND} backup")

    def on_workspace_failed(self, message: WorkspaceFailed) -> None:
        message.stop()
        self.query_one("#pick-intro", Static).update(
            Text(f"The catalog could not be read: {message.error}", style="red")
        )

    @on(DataTable.RowSelected, "#pick-table")
    def _chosen(self) -> None:
        self.wizard.action_next()

    def selected(self) -> RestorableSet | None:
        table = self.query_one("#pick-table", DataTable)
        row = table.cursor_row
        if not self.choices or row is None or not 0 <= row < len(self.choices):
            return None
        return self.choices[row]

    def problem(self) -> str | None:
        if not self.loaded:
            return "Still reading the catalog…"
        if self.selected() is None:
            return f"There is no {self.wizard.KIND} backup to pick."
        return None

    def leave(self) -> None:
        chosen = self.selected()
        assert chosen is not None
        self.wizard.chosen = chosen
        self.wizard.reference = chosen.reference
        self.wizard.reference_metadata = chosen.metadata


class DryRunStep(WizardStep):
    TITLE = "Dry run"

    def compose(self) -> ComposeResult:
        yield Static("", id="dry-run-state", classes="step-intro")
        yield RichLog(id="dry-run-report", wrap=True, markup=False, auto_scroll=False)

    def on_mount(self) -> None:
        self.state = "idle"

    def enter(self) -> None:
        self.state = "running"
        self.query_one("#dry-run-report", RichLog).clear()
        self.query_one("#dry-run-state", Static).update(
            "Asking the engine what this restore would do (the backup is authenticated, "
            "nothing is changed)…"
        )
        wizard = self.wizard
        assert wizard.reference is not None
        wizard.console.runner.restore(
            wizard.KIND, wizard.reference, wizard.engine_options(dry_run=True), wizard
        )

    def finished(self, report, error: str | None) -> None:
        log = self.query_one("#dry-run-report", RichLog)
        state = self.query_one("#dry-run-state", Static)
        if error is not None:
            self.state = "failed"
            state.update(Text("The dry run failed; nothing was changed.", style="bold red"))
            log.write(Text(error, style="red"))
            return
        refused = [line for line in report.lines if line.startswith(REFUSED_PREFIX)]
        self.state = "refused" if refused else "ok"
        heading = (
            Text(f"Dry run of {report.target}: the engine would refuse this.", style="bold red")
            if refused
            else Text(f"Dry run of {report.target}: nothing was changed.", style="bold green")
        )
        state.update(heading)
        for line in report.lines:
            log.write(Text(line, style="red" if line.startswith(REFUSED_PREFIX) else ""))
        for warning in report.warnings:
            log.write(Text(f"warning: {warning}", style="yellow"))

    def problem(self) -> str | None:
        return {
            "running": "The dry run is still working…",
            "failed": "The dry run failed: go back (ctrl+b) and change the choices.",
            "refused": "The engine would refuse this restore: go back and change the choices.",
        }.get(self.state)


class ConfirmStep(WizardStep):
    TITLE = "Confirm"
    next_label = "Restore"

    def compose(self) -> ComposeResult:
        yield Static("", id="confirm-consequence", classes="step-intro")
        yield Static("", id="confirm-prompt")
        yield Input(id="confirm-typed", compact=True)

    def enter(self) -> None:
        wizard = self.wizard
        self.query_one("#confirm-consequence", Static).update(wizard.consequence())
        typed = self.query_one("#confirm-typed", Input)
        prompt = self.query_one("#confirm-prompt", Static)
        destructive = wizard.destructive()
        typed.display = prompt.display = destructive
        typed.value = ""
        if destructive:
            prompt.update(
                Text.assemble(
                    ("This replaces data. ", "bold red"),
                    "Type ",
                    (wizard.target_name(), "bold"),
                    " to confirm:",
                )
            )
            typed.placeholder = wizard.target_name()
            typed.focus()
        else:
            self.wizard.query_one("#next").focus()

    @on(Input.Submitted, "#confirm-typed")
    def _submitted(self) -> None:
        self.wizard.action_next()

    def problem(self) -> str | None:
        wizard = self.wizard
        if wizard.destructive():
            typed = self.query_one("#confirm-typed", Input).value
            if typed != wizard.target_name():
                return f"Type {wizard.target_name()} exactly to confirm (or go back)."
        return None


# How run_job words a job's last log line; the step says how the job ended itself.
JOB_END_LINE = re.compile(r"^(succeeded|failed|cancelled) (in|after) ")


class RunStep(WizardStep):
    TITLE = "Run"
    can_go_back = False

    def compose(self) -> ComposeResult:
        yield Static("", id="run-state", classes="step-intro")
        yield ProgressBar(id="run-progress", show_eta=False)
        yield Static("", id="run-rate", classes="muted")
        yield RichLog(id="run-log", wrap=True, markup=False)
        yield Button("Cancel restore", id="run-cancel", variant="error", compact=True)

    def on_mount(self) -> None:
        self.started = False
        self.elapsed_from: float | None = None

    def enter(self) -> None:
        if self.started:
            return
        self.started = True
        wizard = self.wizard
        wizard.running = True
        wizard.refresh_buttons()
        self.query_one("#run-state", Static).update(
            f"Restoring {wizard.reference} into {wizard.target_name()}…"
        )
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
        self.query_one("#run-state", Static).update(
            Text(
                f"The restore {outcome}. Next shows the result and what to do now.",
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
