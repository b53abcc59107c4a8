"""`backup now`: pick a source (or everything); unconfigured ones say why."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from jarvis_tui.dashboard_view import gather_sources
from jarvis_tui.engine_access import Settings

FULL = "full"


def backup_choices(settings: Settings) -> list[tuple[str, str, bool]]:
    """(kind, label, enabled) for every registered source, plus the full backup."""
    choices = [(FULL, "Everything (the guide's backup:full)", True)]
    for row in gather_sources(settings, None):
        reason = row.not_configured
        label = row.kind if reason is None else f"{row.kind}: {reason}"
        choices.append((row.kind, label, reason is None))
    return choices


class BackupChooser(ModalScreen[str | None]):
    BINDINGS = [("escape", "dismiss(None)", "Back")]

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        options = [
            Option(label, id=kind, disabled=not enabled)
            for kind, label, enabled in backup_choices(self.settings)
        ]
        with Vertical(classes="dialog"):
            yield Static("Back up now", classes="dialog-title")
            yield Static("A manual backup, kept under the manual tier.", classes="muted")
            yield OptionList(*options, id="sources")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
