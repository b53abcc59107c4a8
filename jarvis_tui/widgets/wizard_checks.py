"""The steps before a restore changes anything: the engine's dry run, then confirmation."""

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, RichLog, Static

from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wrapping_log import WrappingLog


class DryRunStep(WizardStep):
    TITLE = "Dry run"

    def compose(self) -> ComposeResult:
        yield Static("", id="dry-run-state", classes="step-intro")
        yield WrappingLog(id="dry-run-report", auto_scroll=False)

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
        self.state = "refused" if report.refusal else "ok"
        heading = (
            Text(f"Dry run of {report.target}: the engine would refuse this.", style="bold red")
            if report.refusal
            else Text(f"Dry run of {report.target}: nothing was changed.", style="bold green")
        )
        state.update(heading)
        for line in report.lines:
            if line == report.refusal:  # the engine's line names command-line flags
                log.write(Text(self.wizard.refusal_words(report), style="red"))
            else:
                log.write(Text(line))
        for warning in report.warnings:
            log.write(Text(f"warning: {warning}", style="yellow"))

    def problem(self) -> str | None:
        return "The dry run is still working…" if self.state == "running" else None

    def blocked(self) -> str | None:
        if self.state == "failed":
            return "The dry run failed: go back (ctrl+b) and change the choices."
        if self.state == "refused":
            report = self.wizard.dry_run_report
            assert report is not None
            return self.wizard.refusal_words(report)
        return None


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
        name = wizard.typed_name()
        typed.display = prompt.display = name is not None
        typed.value = ""
        if name is not None:
            prompt.update(
                Text.assemble(
                    (wizard.confirm_warning(), "bold red"), "Type ", (name, "bold"), " to confirm:"
                )
            )
            typed.placeholder = name
            typed.focus()
        else:
            self.wizard.query_one("#next").focus()

    @on(Input.Submitted, "#confirm-typed")
    def _submitted(self) -> None:
        self.wizard.action_next()

    def problem(self) -> str | None:
        name = self.wizard.typed_name()
        if name is not None and self.query_one("#confirm-typed", Input).value != name:
            return f"Type {name} exactly to confirm (or go back)."
        return None
