"""The help screen: every key of the pane it was opened from, then the global ones."""

import re

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GLOBAL_KEYS = (
    ("ctrl+p", "command palette: every action by name, with its key"),
    ("1 … 5", "Dashboard, Catalog, Jobs, Alerts, Settings"),
    ("b", "back up now (choose the source and its options)"),
    ("R", "restore a source (config too) or the complete system"),
    ("m", "maintenance: retention and cleanup, health, verify all, drill, prune, rebuild"),
    ("? / F1", "this help"),
    ("n", "messages: every notification of this session, with its time"),
    ("k", "encryption key: a new one when none is set, else rotate it"),
    ("tab / shift+tab", "next / previous field"),
    ("escape", "close a dialog or leave a wizard"),
    ("q", "quit (asks first while jobs started here still run)"),
)


def key_name(key: str) -> str:
    """The key as printed on it: `slash` is shown `/`; named keys (enter, up) stay words."""
    shown = format_key(key)
    return shown if len(shown) == 1 and shown.isascii() else key


def screen_title(screen: Screen) -> str:
    """A wizard's own title, else the class name in words: SystemRestoreScreen, System restore."""
    if type(screen).TITLE:
        return type(screen).TITLE
    words = re.findall(r"[A-Z][a-z]*", type(screen).__name__.removesuffix("Screen"))
    return " ".join([words[0], *(word.lower() for word in words[1:])]) if words else "Console"


def key_rows(bindings: list) -> list[tuple[str, str]]:
    rows = []
    for item in bindings:
        binding = item if isinstance(item, Binding) else Binding(*item)
        if binding.description:
            keys = " / ".join(key_name(k.strip()) for k in binding.key.split(","))
            rows.append((keys, binding.description))
    return rows


def keys_table(title: str, rows: list[tuple[str, str]] | tuple) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, expand=True)
    table.add_column("key", style="bold", no_wrap=True, width=16)
    table.add_column("what", ratio=1)
    for key, what in rows:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, under: Screen):
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        pane = screen_title(self.under)
        local = key_rows(list(getattr(self.under, "BINDINGS", [])))
        with Vertical(classes="dialog wide"):
            yield Static(Text(f"Keys · {pane}", style="bold"), classes="dialog-title")
            with VerticalScroll():
                if local:
                    yield Static(keys_table("This screen", local))
                yield Static(keys_table("Everywhere", GLOBAL_KEYS))
                yield Static(
                    "Mouse works too: click rows, buttons and the bar on top. Jobs started by "
                    "the scheduler or the CLI in another process show up in Jobs within a "
                    "second. Escape closes this help.",
                    classes="muted",
                )
