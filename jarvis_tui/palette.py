"""Command palette entries (ctrl+p): every action of the console by name, with its key.

Entries that act on a selection (verify, restore, export, delete a backup;
cancel a job) appear while the pane that holds the selection is shown.
Each entry shows the key that does the same where there is one ("2 v": the
Catalog pane, then v), so the palette also teaches the keys.
"""

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.screen import Screen

from jarvis_tui.dashboard_view import all_sources
from jarvis_tui.widgets.pane_bar import PANES

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole


class Command(NamedTuple):
    name: str
    run: Callable[[], object]
    help: str
    key: str = ""  # the key (or keys in turn) doing the same outside the palette


CATALOG_ENTRIES = (
    ("verify", "Verify the selected backup", "recompute checksums, authenticate every chunk", "v"),
    (
        "verify_data",
        "Verify the selected backup, reading all data",
        "also read every chunk of its files snapshot",
        "V",
    ),
    ("restore", "Restore the selected backup", "open its wizard with this backup chosen", "r"),
    (
        "export",
        "Export the selected backup",
        "into a new folder: plain .gz or SQL, a files snapshot as a tarball",
        "e",
    ),
    (
        "diff",
        "Compare the selected snapshot with another",
        "files added, removed and changed since the one before it",
        "d",
    ),
    ("sync", "Sync every backup to S3", "copy what each copy destination lacks", "s"),
    ("delete", "Delete the selected backup", "remove it everywhere (typed confirmation)", "x"),
    ("focus_filter", "Filter the catalog", "type words to narrow the list", "/"),
)


def console_commands(app: "JarvisConsole", screen: Screen) -> Iterator[Command]:
    from jarvis_tui.screens.backup_chooser import POSTGRES_MODES, BackupChoice
    from jarvis_tui.screens.catalog import CatalogScreen
    from jarvis_tui.screens.jobs import JobsScreen
    from jarvis_tui.screens.maintenance import ENTRIES, MENU_KEY, run_maintenance
    from jarvis_tui.screens.restore_chooser import SYSTEM, WIZARDS, open_restore, restore_labels

    for name, key, title in PANES:
        yield Command(f"Go to {title}", partial(app.action_pane, name), "pane", key)
    yield Command("Back up now…", app.action_backup_now, "choose a source", "b")
    for kind in ("full", *all_sources()):
        yield Command(f"Back up {kind} now", partial(app.start_backup, kind), "a manual backup")
    for mode in ("schema", "data"):
        choice = BackupChoice("postgres", postgres_mode=mode)
        what = POSTGRES_MODES[mode]
        yield Command(f"Back up postgres now, {mode} only", partial(app.start_backup, choice), what)
    every_file = BackupChoice("files", incremental=False)
    yield Command(
        "Back up files now, reading every file",
        partial(app.start_backup, every_file),
        "not only what changed since the last snapshot",
    )
    for kind in restore_labels():
        wizard = WIZARDS[kind]
        yield Command(wizard.command, partial(open_restore, app, kind), wizard.help, "R")
    system = "the guide's eight steps, run or skip each"
    yield Command("Restore the complete system", partial(open_restore, app, SYSTEM), system, "R")
    yield Command(
        "Verify the latest backup", partial(app.runner.verify, "latest", app), "every artifact"
    )
    yield Command("Maintenance…", app.action_maintenance, "retention, health, verify…", MENU_KEY)
    for entry in ENTRIES:
        run = partial(run_maintenance, app, entry.name)
        yield Command(entry.title, run, entry.help, f"{MENU_KEY} {entry.key}")
    if isinstance(screen, CatalogScreen):
        for action, title, help_text, key in CATALOG_ENTRIES:
            yield Command(title, getattr(screen, f"action_{action}"), help_text, key)
    if isinstance(screen, JobsScreen):
        yield Command(
            "Cancel the selected job", screen.action_cancel_job, "it stops at its next check", "c"
        )
    yield Command("Send a test alert", app.action_test_alert, "one message to every channel", "4 t")
    yield Command("Reload settings", app.reload_settings, "after editing the .env file", "5 r")
    if app.key_configured():
        yield Command(
            "Rotate the encryption key",
            app.action_offer_key,
            "a new key, the old one kept; earlier backups sealed again",
            "k",
        )
    else:
        yield Command(
            "Generate a new encryption key", app.action_offer_key, "and store it in .env", "k"
        )
    yield Command("Show the keys", app.action_help, "help", "?")
    yield Command(
        "Show the messages", app.action_messages, "every notification, with its time", "n"
    )


def prompt(name: str, key: str, shown: Content | None = None) -> Content:
    """The entry's name (as matched) and, after it, its key."""
    content = shown if shown is not None else Content(name)
    if key:
        content = content + Content.styled(f"  {key}", "bold $text-accent")
    return content


class ConsoleCommands(Provider):
    def _commands(self) -> list[Command]:
        return list(console_commands(cast("JarvisConsole", self.app), self.screen))

    async def discover(self) -> Hits:
        for command in self._commands():
            shown = prompt(command.name, command.key)
            yield DiscoveryHit(shown, command.run, text=command.name, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                shown = prompt(command.name, command.key, matcher.highlight(command.name))
                yield Hit(score, shown, command.run, text=command.name, help=command.help)
