"""Messages (n): every notification of this session, newest first, with time and severity."""

from typing import TYPE_CHECKING, cast

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jarvis_tui.formatting import short_moment
from jarvis_tui.message_history import KeptMessage

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

SEVERITY_WORDS = {"information": "info", "warning": "warning", "error": "error"}
# Drawing a rich table costs about 2 ms a row: the newest only, so n opens at once.
SHOWN_MESSAGES = 50
SEVERITY_STYLES = {"information": "green", "warning": "yellow", "error": "bold red"}


class MessagesScreen(ModalScreen[None]):
    TITLE = "Messages"
    BINDINGS = [("escape,n", "dismiss", "Close")]

    @property
    def console(self) -> "JarvisConsole":
        return cast("JarvisConsole", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static("", id="messages-title", classes="dialog-title")
            with VerticalScroll():
                yield Static("", id="messages-list")

    def on_mount(self) -> None:
        self._redraw_due = False
        self.console.messages_signal.subscribe(self, self._kept)
        self._show()

    def _kept(self, _: KeptMessage) -> None:
        # A burst of notifications is drawn once, not once each.
        if not self._redraw_due:
            self._redraw_due = True
            self.call_after_refresh(self._show)

    def _show(self) -> None:
        self._redraw_due = False
        history = self.console.message_history
        messages = history.messages[-SHOWN_MESSAGES:]
        title = f"Messages · {history.count} this session, newest first"
        if history.count > len(messages):
            title += f" (the newest {len(messages)} shown)"
        self.query_one("#messages-title", Static).update(Text(title, style="bold"))
        if not messages:
            self.query_one("#messages-list", Static).update(Text("No messages yet.", style="dim"))
            return
        now = self.console.clock()
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("Time", no_wrap=True)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Message", ratio=1)
        for message in reversed(messages):
            text = Text(f"{message.title}: " if message.title else "", style="bold")
            text.append(message.text)
            table.add_row(
                short_moment(message.at, now),
                Text(
                    SEVERITY_WORDS.get(message.severity, message.severity),
                    style=SEVERITY_STYLES.get(message.severity, ""),
                ),
                text,
            )
        self.query_one("#messages-list", Static).update(table)
