"""The secrets restore wizard: the guide's `cp secrets/latest .env`, with a safety copy."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, RadioButton, RadioSet, Static

from jarvis_tui.restore_access import TARGET_EXISTS, RestoreReport, SecretsRestoreOptions
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.marked_toggles import MarkedCheckbox, MarkedRadioButton
from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wizard_steps import restore_steps


@dataclass
class SecretsPlan:
    to_original: bool = True
    path: str = ""
    file: str = ""
    force: bool = False


class SecretsTargetStep(WizardStep):
    TITLE = "Target"

    def compose(self) -> ComposeResult:
        yield Static("Which file should receive the variables?", classes="step-intro")
        with RadioSet(id="secrets-target"):
            yield MarkedRadioButton(
                "Where it was backed up from", id="secrets-original", value=True
            )
            yield MarkedRadioButton("Another file", id="secrets-other")
        with Horizontal(classes="field"):
            yield Static("File ", classes="label")
            yield Input(compact=True, id="secrets-path")
        with Horizontal(classes="field"):
            yield Static("Which backed-up file ", classes="label")
            yield Input(
                compact=True, placeholder="empty when the backup holds one file", id="secrets-file"
            )
        yield MarkedCheckbox(
            compact=True,
            label="Replace the file if it exists (it is kept as FILE.bak)",
            id="secrets-force",
        )

    def enter(self) -> None:
        plan = self.wizard.plan
        original = self.wizard.original_path()
        self.query_one("#secrets-original", RadioButton).label = f"Where it was: {original}"
        self.query_one("#secrets-original", RadioButton).value = plan.to_original
        self.query_one("#secrets-other", RadioButton).value = not plan.to_original
        self.query_one("#secrets-path", Input).value = plan.path or f"{original}.restored"
        self.query_one("#secrets-file", Input).value = plan.file
        self.query_one("#secrets-force", Checkbox).value = plan.force
        self._explain()
        self.query_one(RadioSet).focus()

    @on(RadioSet.Changed, "#secrets-target")
    def _changed(self) -> None:
        self._explain()

    def _to_original(self) -> bool:
        return self.query_one("#secrets-original", RadioButton).value

    def _explain(self) -> None:
        self.query_one("#secrets-path", Input).disabled = self._to_original()

    def problem(self) -> str | None:
        if not self._to_original() and not self.query_one("#secrets-path", Input).value.strip():
            return "Name the file to write."
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        plan.to_original = self._to_original()
        plan.path = self.query_one("#secrets-path", Input).value.strip()
        plan.file = self.query_one("#secrets-file", Input).value.strip()
        plan.force = self.query_one("#secrets-force", Checkbox).value


class SecretsRestoreWizard(RestoreWizard):
    KIND = "secrets"
    TITLE = "Restore secrets (.env)"
    PLAN = SecretsPlan

    def make_steps(self) -> list[WizardStep]:
        return restore_steps(SecretsTargetStep())

    def original_path(self) -> str:
        return str(self.reference_metadata.get("original_path") or ".env")

    def target_name(self) -> str:
        return self.original_path() if self.plan.to_original else self.plan.path

    def engine_options(self, dry_run: bool) -> Any:
        plan = self.plan
        return SecretsRestoreOptions(
            to=None if plan.to_original else Path(plan.path),
            force=plan.force,
            dry_run=dry_run,
            file=plan.file or None,
        )

    def destructive(self) -> bool:
        return self.plan.force

    def consequence(self) -> Text:
        text = Text.assemble(
            "Write the variables of ",
            (str(self.reference), "bold"),
            " to ",
            (self.target_name(), "bold"),
            " (mode 0600).\n",
        )
        if self.plan.force:
            text.append(f"An existing file is replaced; it is kept as {self.target_name()}.bak.\n")
        else:
            text.append("An existing file is refused, not replaced.\n")
        return text

    def refusal_words(self, report: RestoreReport) -> str:
        if report.refusal_reason == TARGET_EXISTS:
            return (
                f"{report.target} exists: go back (ctrl+b) and tick “Replace the file if it "
                "exists” (it is kept as FILE.bak), or choose another file."
            )
        return super().refusal_words(report)

    def next_steps(self) -> list[str]:
        if self.outcome != "succeeded":
            return [
                "Nothing was written; go back (ctrl+b) to change the choices, or read the job "
                "log in Jobs (3)."
            ]
        steps = ["Restart the services so they read the restored variables."]
        if self.plan.force:
            steps.append(f"Delete {self.target_name()}.bak once the services run well.")
        return steps

    def describe_backup(self, metadata: dict[str, Any]) -> str:
        return str(metadata.get("original_path") or metadata.get("file_name") or "")
