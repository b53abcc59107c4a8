"""Quitting while jobs run: leave them running, cancel them first, or stay."""

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

LEAVE, CANCEL = "leave", "cancel-jobs"


def quit_question(own: list[str], scheduled: str | None) -> str:
    """What quitting does to the jobs going: `own` this console started, `scheduled` the
    run of its scheduler (words, job id) if one is going."""
    lines = []
    if own:
        lines += [
            f"Started here and still going: {', '.join(own)}.",
            "",
            "Leave running: they finish on their own once the console has gone; open the "
            "console again to follow them in Jobs (3).",
            "",
        ]
    lines += [
        "Cancel jobs and quit: each stops safely first (a cancelled backup leaves earlier "
        "backups as they were; a cancelled restore leaves the existing data as it was).",
    ]
    if scheduled:
        lines += [
            "",
            f"The scheduled {scheduled} belongs to this console's scheduler: it is "
            "cancelled when the console quits, either way.",
        ]
    return "\n".join(lines)


class QuitWhileJobsRun(ModalScreen[str | None]):
    """Dismissed with LEAVE, CANCEL, or None to stay."""

    BINDINGS = [("escape", "dismiss(None)", "Stay")]

    def __init__(self, own: list[str], scheduled: str | None):
        super().__init__()
        self.own = own
        self.scheduled = scheduled

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Quit while jobs run?", classes="dialog-title")
            yield Static(quit_question(self.own, self.scheduled), markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Stay", id="stay")
                if self.own:
                    yield Button("Leave running", id=LEAVE, variant="primary")
                yield Button("Cancel jobs and quit", id=CANCEL, variant="warning")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in (LEAVE, CANCEL) else None)
