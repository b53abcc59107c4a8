"""Maintenance (m): retention and cleanup, health, verify every backup, the restore drill,
prune and catalog rebuild, each one key away from the menu and named in the palette."""

from typing import TYPE_CHECKING, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from jarvis_tui.screens.confirm import ConfirmScreen

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

MENU_KEY = "m"


class Entry(NamedTuple):
    key: str
    name: str
    title: str
    help: str


ENTRIES = (
    Entry("c", "retention", "Retention and cleanup…", "which backups stay, which go, and why"),
    Entry("h", "health", "Health checks", "what a backup needs, and what to do"),
    Entry("a", "verify_all", "Verify every backup", "re-read and authenticate each artifact"),
    Entry("A", "verify_all_data", "Verify every backup, reading all data", "every chunk too"),
    Entry("d", "drill", "Restore drill", "newest backups restored into scratch, compared"),
    Entry("p", "prune", "Prune the files store…", "remove unreferenced file data"),
    Entry("g", "rebuild_catalog", "Rebuild the catalog…", "from what the repository holds"),
)

# What a job that changes something says before it starts.
CONFIRMATIONS = {
    "prune": (
        "Prune the files store?",
        "Removes the file data no snapshot references, in the repository and on each copy "
        "destination. Every snapshot stays restorable; a damaged pack stops the prune "
        "before anything is deleted.",
        "Prune",
    ),
    "rebuild_catalog": (
        "Rebuild the catalog?",
        "Reads every artifact in the repository, authenticates it with the key and refills "
        "the catalog from the metadata sealed in it; rows of files that are gone are "
        "dropped. Backups themselves are not changed. A catalog that cannot be read is "
        "moved aside first (renamed, kept). It takes as long as reading the repository once.",
        "Rebuild",
    ),
}
STARTED = {
    "verify_all": "Verifying every backup…",
    "verify_all_data": "Verifying every backup, reading all data…",
    "drill": "Restore drill running…",
    "prune": "Pruning the files store…",
    "rebuild_catalog": "Rebuilding the catalog…",
}


def run_maintenance(app: "JarvisConsole", name: str) -> None:
    """Open the screen, or ask and then start the job, that `name` (of ENTRIES) stands for."""
    if name == "retention":
        from jarvis_tui.screens.retention import RetentionScreen

        app.push_screen(RetentionScreen())
        return
    if name == "health":
        from jarvis_tui.screens.health import HealthScreen

        app.push_screen(HealthScreen())
        return

    def start(confirmed: bool | None = True) -> None:
        if not confirmed:
            return
        if name == "rebuild_catalog":
            app.maintenance.rebuild_catalog()
        else:
            app.maintenance.run(name)
        app.notify(f"{STARTED[name]} (progress in Jobs, 3)", timeout=4)

    if name in CONFIRMATIONS:
        app.push_screen(ConfirmScreen(*CONFIRMATIONS[name]), start)
    else:
        start()


class MaintenanceMenu(ModalScreen[str | None]):
    DEFAULT_CSS = """
    MaintenanceMenu #maintenance-actions { max-height: 9; }
    """
    BINDINGS = [
        ("escape", "dismiss(None)", "Back"),
        *(Binding(e.key, f"dismiss({e.name!r})", e.title.rstrip("…")) for e in ENTRIES),
    ]

    def compose(self) -> ComposeResult:
        options = []
        for entry in ENTRIES:
            prompt = Text.assemble((f"{entry.key}  ", "bold"), entry.title)
            prompt.append(f"  {entry.help}", style="dim")
            options.append(Option(prompt, id=entry.name))
        with Vertical(classes="dialog"):
            yield Static("Maintenance", classes="dialog-title")
            yield OptionList(*options, id="maintenance-actions")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
