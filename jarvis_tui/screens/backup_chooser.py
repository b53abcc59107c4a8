"""`backup now`: pick a source (or everything); unconfigured ones say why. Below the list,
the choices a source's backup offers: PostgreSQL's full, schema-only or data-only dump,
and whether the files backup reads only what changed since the last snapshot."""

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, OptionList, RadioSet, Static
from textual.widgets.option_list import Option

from jarvis_tui.dashboard_view import gather_sources
from jarvis_tui.engine_access import Settings
from jarvis_tui.widgets.marked_toggles import MarkedCheckbox, MarkedRadioButton

FULL = "full"
POSTGRES_MODES = {
    "full": "schema and data",
    "schema": "schema only (tables, indexes, no rows)",
    "data": "data only (rows of existing tables)",
}


@dataclass(frozen=True)
class BackupChoice:
    """What the operator asked for: a source (or `full`) and its backup's choices."""

    kind: str
    postgres_mode: str = "full"  # full, schema or data
    incremental: bool = True  # files: read only the files changed since the last snapshot


def backup_choices(settings: Settings) -> list[tuple[str, str, bool]]:
    """(kind, label, enabled) for every registered source, plus the full backup."""
    choices = [(FULL, "Everything (the guide's backup:full)", True)]
    for row in gather_sources(settings, None):
        reason = row.not_configured
        label = row.kind if reason is None else f"{row.kind}: {reason}"
        choices.append((row.kind, label, reason is None))
    return choices


class BackupChooser(ModalScreen[BackupChoice | None]):
    BINDINGS = [("escape", "dismiss(None)", "Back")]

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        choices = backup_choices(self.settings)
        options = [Option(label, id=kind, disabled=not enabled) for kind, label, enabled in choices]
        kinds = {kind for kind, _, _ in choices}
        with Vertical(classes="dialog"):
            yield Static("Back up now", classes="dialog-title")
            yield Static(
                "A manual backup (manual tier). Tab reaches the choices below.",
                classes="muted",
            )
            yield OptionList(*options, id="sources")
            if "postgres" in kinds:
                yield Static("PostgreSQL backup holds:", classes="muted")
                with RadioSet(id="backup-pg-mode", compact=True):
                    for mode, words in POSTGRES_MODES.items():
                        yield MarkedRadioButton(words, id=f"backup-pg-{mode}", value=mode == "full")
            if "files" in kinds:
                yield MarkedCheckbox(
                    "Files: only what changed since the last snapshot (incremental)",
                    value=True,
                    id="backup-incremental",
                    compact=True,
                )

    def choice(self, kind: str) -> BackupChoice:
        mode = "full"
        for radio in self.query(RadioSet):
            pressed = radio.pressed_button
            if pressed is not None and pressed.id:
                mode = pressed.id.removeprefix("backup-pg-")
        incremental = all(box.value for box in self.query("#backup-incremental").results(Checkbox))
        return BackupChoice(kind, mode, incremental)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None
        self.dismiss(self.choice(event.option.id))
