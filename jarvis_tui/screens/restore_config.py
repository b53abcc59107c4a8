"""The configuration restore wizard: the files of BACKUP_CONFIG_PATHS back where they were,
or into a new folder to compare first."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Checkbox

from jarvis_tui.formatting import count
from jarvis_tui.restore_access import (
    FILES_DIFFER,
    ORIGINAL,
    ConfigRestoreOptions,
    RestoreReport,
)
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.folder_target import FolderTargetStep
from jarvis_tui.widgets.marked_toggles import MarkedCheckbox
from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wizard_steps import restore_steps

REPLACE_LABEL = "Replace files that differ from the backup (each kept as NAME.bak)"


@dataclass
class ConfigPlan:
    to_folder: bool = True
    folder: str = ""
    replace: bool = False


class ConfigTargetStep(FolderTargetStep):
    PREFIX = "config"
    QUESTION = "Where should the configuration files go?"
    FOLDER_LABEL = "A new folder (nothing in place is touched)"
    FOLDER_NOTE = (
        "Each file keeps its full path below the folder (created if missing), to compare "
        "with the live files first."
    )
    ORIGINAL_NOTE = (
        "Files go back where they were. One that differs from the backup is replaced "
        "only when ticked above; the previous one is kept beside it as NAME.bak."
    )

    def compose_more(self) -> ComposeResult:
        yield MarkedCheckbox(REPLACE_LABEL, compact=True, id="config-replace")

    def enter(self) -> None:
        self.query_one("#config-replace", Checkbox).value = self.wizard.plan.replace
        super().enter()

    def leave(self) -> None:
        super().leave()
        self.wizard.plan.replace = self.query_one("#config-replace", Checkbox).value


class ConfigRestoreWizard(RestoreWizard):
    KIND = "config"
    TITLE = "Restore configuration"
    PLAN = ConfigPlan

    def make_steps(self) -> list[WizardStep]:
        return restore_steps(ConfigTargetStep())

    def chosen_id(self) -> str:
        return self.chosen.backup_set.id if self.chosen else "config"

    def target_name(self) -> str:
        return self.plan.folder if self.plan.to_folder else ORIGINAL

    def engine_options(self, dry_run: bool) -> ConfigRestoreOptions:
        plan = self.plan
        return ConfigRestoreOptions(
            target_dir=Path(plan.folder).expanduser() if plan.to_folder else None,
            force=plan.replace,
            dry_run=dry_run,
        )

    def destructive(self) -> bool:
        return not self.plan.to_folder and self.plan.replace

    def consequence(self) -> Text:
        text = Text.assemble(
            "Restore the configuration files of ",
            (self.chosen_id(), "bold"),
            " into ",
            (self.target_name(), "bold"),
            ".\n",
        )
        if self.plan.replace:
            text.append("Files that differ are replaced; each previous one is kept as NAME.bak.\n")
        else:
            text.append("Files that are there already are left as they are.\n")
        return text

    def refusal_words(self, report: RestoreReport) -> str:
        if report.refusal_reason == FILES_DIFFER:
            return (
                "Some files there differ from the backup: go back (ctrl+b) and tick “Replace "
                "files that differ” (each is kept as NAME.bak), or choose a new folder."
            )
        return super().refusal_words(report)

    def next_steps(self) -> list[str]:
        if self.outcome != "succeeded":
            return [
                "Files written before the failure stay; nothing else was changed. Read the "
                "job log in Jobs (3), fix the cause and run the wizard again.",
            ]
        if self.plan.to_folder:
            return [
                f"Compare {self.plan.folder} with the live configuration, then copy over "
                "what you need."
            ]
        steps = ["Restart the services that read these files."]
        if self.plan.replace:
            steps.append("Delete the NAME.bak copies once the services run well.")
        return steps

    def describe_backup(self, metadata: dict[str, Any]) -> str:
        files = metadata.get("files")
        paths = metadata.get("paths") or []
        parts = [count(files, "file")] if files is not None else []
        parts += [str(p) for p in paths[:2]]
        return " · ".join(parts)
