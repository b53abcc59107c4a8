"""Health (m, h): every check of the health engine, as `jarvis-tui health` runs them, with
what to do about each one that fails or warns."""

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from jarvis_tui.messages import HealthRead
from jarvis_tui.screens.base import ConsoleScreen
from jarvis_tui.system_health import FAILED, OK, WARNING, HealthRow, health_rows

# A word beside each colour, so a monochrome terminal shows the state too.
STATES = {OK: ("✓ ok", "green"), WARNING: ("! warning", "yellow"), FAILED: ("✗ FAILED", "bold red")}


def health_table(rows: list[HealthRow]) -> Table:
    table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("State", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Detail", ratio=1)
    for row in rows:
        word, style = STATES[row.state]
        detail = Text(row.detail)
        if row.hint:
            detail.append(f"\n→ {row.hint}", style=style)
        table.add_row(Text(word, style=style), row.name, detail)
    return table


class HealthScreen(ConsoleScreen):
    TITLE = "Health"
    BINDINGS = [
        Binding("f5", "refresh", "Check again"),
        Binding("escape", "app.pop_screen", "Close"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(Text(" Health: everything a backup needs", style="bold"), id="wizard-title")
        yield Static("Checking…", id="health-summary")
        with VerticalScroll(id="health-scroll"):
            yield Static("", id="health-checks")
        yield Footer()

    def on_mount(self) -> None:
        self.rows: list[HealthRow] = []
        self.action_refresh()

    def action_refresh(self) -> None:
        self.query_one("#health-summary", Static).update("Checking…")
        self.check()

    @work(thread=True, exclusive=True, exit_on_error=False, group="health")
    def check(self) -> None:
        self.post_message(HealthRead(health_rows(self.console)))

    def on_health_read(self, message: HealthRead) -> None:
        self.rows = message.rows
        counts = {state: sum(row.state == state for row in self.rows) for state in STATES}
        summary = Text()
        if counts[FAILED]:
            summary.append(f"{counts[FAILED]} check(s) failed", style="bold red")
        else:
            summary.append("Healthy", style="bold green")
        summary.append(f", {counts[WARNING]} warning(s), {counts[OK]} ok. F5 checks again.")
        self.query_one("#health-summary", Static).update(summary)
        self.query_one("#health-checks", Static).update(health_table(self.rows))
