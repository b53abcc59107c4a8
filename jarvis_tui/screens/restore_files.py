"""The files restore wizard: the guide's restore-files.sh, to a folder or the original places."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, RadioButton, RadioSet, Static

from jarvis_tui.formatting import count, human_size
from jarvis_tui.restore_access import ORIGINAL, OVERWRITE_POLICIES, FilesRestoreOptions
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.folder_target import FolderTargetStep
from jarvis_tui.widgets.marked_toggles import MarkedRadioButton
from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wizard_steps import restore_steps

OVERWRITE_WORDS = {
    "never": "never: keep every file that is already there",
    "if-newer": "if newer: replace a file only when the backup's copy is newer",
    "always": "always: replace every file that is already there",
}


@dataclass
class FilesPlan:
    to_folder: bool = True
    folder: str = ""
    overwrite: str = "never"
    paths: tuple[str, ...] = ()
    strip_prefix: str = ""


class FilesTargetStep(FolderTargetStep):
    PREFIX = "files"
    QUESTION = "Where should the files go?"
    FOLDER_LABEL = "A folder (nothing in place is touched)"
    FOLDER_NOTE = (
        "Each file keeps its backed-up path below the folder (strip a leading folder in the "
        "next step)."
    )
    ORIGINAL_NOTE = (
        "Files go back where they were; what already exists follows the overwrite "
        "choice in the next step."
    )


class FilesOptionsStep(WizardStep):
    TITLE = "Options"

    def compose(self) -> ComposeResult:
        yield Static("Files that already exist at the target:", classes="muted")
        with RadioSet(id="files-overwrite"):
            for policy in OVERWRITE_POLICIES:
                yield MarkedRadioButton(OVERWRITE_WORDS[policy], id=f"files-overwrite-{policy}")
        with Horizontal(classes="field"):
            yield Static("Only these paths ", classes="label")
            yield Input(
                compact=True,
                placeholder="comma-separated, as backed up; empty: everything",
                id="files-paths",
            )
        with Horizontal(classes="field"):
            yield Static("Strip leading folder ", classes="label")
            yield Input(compact=True, placeholder="e.g. tmp/jarvis-music-uploads", id="files-strip")

    def enter(self) -> None:
        plan = self.wizard.plan
        for policy in OVERWRITE_POLICIES:
            button = self.query_one(f"#files-overwrite-{policy}", RadioButton)
            button.value = policy == plan.overwrite
        self.query_one("#files-paths", Input).value = ", ".join(plan.paths)
        self.query_one("#files-strip", Input).value = plan.strip_prefix
        self.query_one("#files-overwrite", RadioSet).focus()

    def leave(self) -> None:
        plan = self.wizard.plan
        pressed = self.query_one("#files-overwrite", RadioSet).pressed_button
        plan.overwrite = str(pressed.id).removeprefix("files-overwrite-") if pressed else "never"
        raw = self.query_one("#files-paths", Input).value
        plan.paths = tuple(p.strip() for p in raw.split(",") if p.strip())
        plan.strip_prefix = self.query_one("#files-strip", Input).value.strip()


class FilesRestoreWizard(RestoreWizard):
    KIND = "files"
    TITLE = "Restore files"
    PLAN = FilesPlan

    def make_steps(self) -> list[WizardStep]:
        return restore_steps(FilesTargetStep(), FilesOptionsStep())

    def chosen_id(self) -> str:
        return self.chosen.backup_set.id if self.chosen else "files"

    def target_name(self) -> str:
        return self.plan.folder if self.plan.to_folder else ORIGINAL

    def engine_options(self, dry_run: bool) -> FilesRestoreOptions:
        plan = self.plan
        return FilesRestoreOptions(
            paths=plan.paths,
            target_dir=Path(plan.folder) if plan.to_folder else None,
            strip_prefix=plan.strip_prefix or None,
            overwrite=plan.overwrite,
            dry_run=dry_run,
        )

    def destructive(self) -> bool:
        return self.plan.overwrite != "never"

    def consequence(self) -> Text:
        plan = self.plan
        what = ", ".join(plan.paths) if plan.paths else "every file"
        text = Text.assemble(
            "Restore ",
            (what, "bold"),
            " from ",
            (self.chosen_id(), "bold"),
            " into ",
            (self.target_name(), "bold"),
            ".\n",
        )
        text.append(f"Existing files: overwrite {OVERWRITE_WORDS[plan.overwrite]}.\n")
        return text

    def next_steps(self) -> list[str]:
        if self.outcome != "succeeded":
            return [
                "Files written before the failure stay; nothing else was changed. Read the "
                "job log in Jobs (3), fix the cause and run the wizard again.",
            ]
        steps = []
        if self.plan.to_folder:
            steps.append(
                f"Compare {self.plan.folder} with the live files, then move what you need."
            )
        else:
            steps.append("Restart the services that read these files.")
        if self.report is not None and self.report.warnings:
            steps.append("Look at the skipped files listed above (see the dry run for why).")
        return steps

    def describe_backup(self, metadata: dict[str, Any]) -> str:
        snapshot = metadata.get("snapshot") or {}
        parts = []
        if snapshot.get("files") is not None:
            parts.append(count(snapshot["files"], "file"))
        if snapshot.get("bytes") is not None:
            parts.append(human_size(snapshot["bytes"]))
        return " · ".join(parts) or str(metadata.get("mode", ""))
