"""A reload the console refused: every problem of the new reading at once, and what it kept."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from jarvis_tui.engine_access import Settings, SettingsCheck


def problem_list(check: SettingsCheck) -> Text:
    """The errors (why nothing changed), then what else stops a backup, one per line."""
    text = Text()
    for problem in check.errors:
        text.append("✗ ", style="bold red").append(f"{problem}\n")
    if check.warnings:
        text.append("\nAlso to fix before backups work:\n", style="bold")
        for problem in check.warnings:
            text.append("! ", style="bold yellow").append(f"{problem}\n")
    text.rstrip()
    return text


class ReloadRefusedScreen(ModalScreen[None]):
    BINDINGS = [("escape", "dismiss", "Close")]

    def __init__(self, check: SettingsCheck, kept: Settings):
        super().__init__()
        self.check = check
        self.kept = kept

    def compose(self) -> ComposeResult:
        source = self.check.settings.env_file or "the environment"
        count = len(self.check.problems)
        with Vertical(classes="dialog danger", id="reload-refused"):
            yield Static(
                f"Settings not reloaded: {count} problem(s) in {source}",
                classes="dialog-title",
                markup=False,
            )
            yield Static(
                "The console and its scheduler keep the settings they had (repository "
                f"{self.kept.repository_dir}, catalog {self.kept.catalog_path}). Correct "
                f"each line below in {source}, then reload (r in Settings, 5).",
                markup=False,
            )
            with VerticalScroll(id="reload-problems"):
                yield Static(problem_list(self.check))
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)
