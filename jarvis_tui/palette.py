"""Command palette entries (ctrl+p): every action of the console by name.

Entries that act on a selection (verify, restore, export, delete a backup;
cancel a job) appear while the pane that holds the selection is shown.
Actions a build does not have yet still appear and say so when chosen.
"""

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from jarvis_tui.dashboard_view import all_sources
from jarvis_tui.widgets.pane_bar import PANES

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

Command = tuple[str, Callable[[], object], str]

CATALOG_ENTRIES = (
    ("verify", "Verify the selected backup", "recompute checksums, authenticate every chunk"),
    ("restore", "Restore the selected backup", "open its wizard with this backup chosen"),
    ("export", "Export the selected backup", "decrypt it to a folder as plain .gz or SQL"),
    ("sync", "Sync every backup to S3", "copy what each copy destination lacks"),
    ("delete", "Delete the selected backup", "remove it everywhere (typed confirmation)"),
    ("focus_filter", "Filter the catalog", "type words to narrow the list"),
)


def console_commands(app: "JarvisConsole", screen: Screen) -> Iterator[Command]:
    from jarvis_tui.screens.catalog import CatalogScreen
    from jarvis_tui.screens.jobs import JobsScreen
    from jarvis_tui.screens.restore_chooser import SYSTEM, WIZARDS, open_restore, restore_labels

    for name, key, title in PANES:
        yield f"Go to {title}", partial(app.action_pane, name), f"pane {key}"
    yield "Back up now…", app.action_backup_now, "choose a source"
    for kind in ("full", *all_sources()):
        yield f"Back up {kind} now", partial(app.start_backup, kind), "a manual backup"
    for kind in restore_labels():
        wizard = WIZARDS[kind]
        yield wizard.command, partial(open_restore, app, kind), wizard.help
    system = "the guide's eight steps, run or skip each"
    yield "Restore the complete system", partial(open_restore, app, SYSTEM), system
    yield "Verify the latest backup", partial(app.runner.verify, "latest", app), "every artifact"
    if isinstance(screen, CatalogScreen):
        for action, title, help_text in CATALOG_ENTRIES:
            yield title, getattr(screen, f"action_{action}"), help_text
    if isinstance(screen, JobsScreen):
        yield "Cancel the selected job", screen.action_cancel_job, "it stops at its next check"
    yield "Send a test alert", app.action_test_alert, "one message to every channel"
    yield "Reload settings", app.reload_settings, "after editing the .env file"
    yield "Generate a new encryption key", app.action_offer_key, "and store it in .env"
    yield "Show the keys", app.action_help, "help"


class ConsoleCommands(Provider):
    def _commands(self) -> list[Command]:
        return list(console_commands(cast("JarvisConsole", self.app), self.screen))

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
