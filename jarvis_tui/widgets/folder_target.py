"""The Target step of the files and configuration wizards: a folder (nothing in place is
touched) or the original locations. Widget ids start with the wizard's PREFIX."""

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, RadioButton, RadioSet, Static

from jarvis_tui.widgets.marked_toggles import MarkedRadioButton
from jarvis_tui.widgets.wizard_step import WizardStep


class FolderTargetStep(WizardStep):
    """Fills the plan's `to_folder` and `folder`; a subclass adds its own choices below."""

    TITLE = "Target"
    PREFIX = ""
    QUESTION = ""
    FOLDER_LABEL = ""
    FOLDER_NOTE = ""
    ORIGINAL_NOTE = ""

    def _ref(self, name: str) -> str:
        return f"#{self.PREFIX}-{name}"

    def compose(self) -> ComposeResult:
        yield Static(self.QUESTION, classes="step-intro")
        with RadioSet(id=f"{self.PREFIX}-target"):
            yield MarkedRadioButton(self.FOLDER_LABEL, id=f"{self.PREFIX}-folder", value=True)
            yield MarkedRadioButton(
                "The original locations (as backed up)", id=f"{self.PREFIX}-original"
            )
        with Horizontal(classes="field"):
            yield Static("Folder ", classes="label")
            yield Input(compact=True, id=f"{self.PREFIX}-folder-path")
        yield from self.compose_more()
        yield Static("", id=f"{self.PREFIX}-target-note", classes="muted")

    def compose_more(self) -> ComposeResult:
        yield from ()

    def enter(self) -> None:
        plan = self.wizard.plan
        if not plan.folder:
            plan.folder = str(Path.cwd() / "restored" / str(self.wizard.chosen_id()))
        self.query_one(self._ref("folder-path"), Input).value = plan.folder
        self.query_one(self._ref("folder"), RadioButton).value = plan.to_folder
        self.query_one(self._ref("original"), RadioButton).value = not plan.to_folder
        self._explain()
        self.query_one(RadioSet).focus()

    @on(RadioSet.Changed)
    def _changed(self) -> None:
        self._explain()

    def _to_folder(self) -> bool:
        return self.query_one(self._ref("folder"), RadioButton).value

    def _explain(self) -> None:
        to_folder = self._to_folder()
        self.query_one(self._ref("folder-path"), Input).disabled = not to_folder
        note = self.FOLDER_NOTE if to_folder else self.ORIGINAL_NOTE
        self.query_one(self._ref("target-note"), Static).update(note)

    def problem(self) -> str | None:
        if self._to_folder() and not self.query_one(self._ref("folder-path"), Input).value.strip():
            return "Name the folder to restore into."
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        plan.to_folder = self._to_folder()
        plan.folder = self.query_one(self._ref("folder-path"), Input).value.strip()
