"""Dashboard: schedules, the last good backup of each source, places, alerts; live."""

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from jarvis_tui.dashboard_view import DashboardFacts, SourceRow, gather_dashboard
from jarvis_tui.formatting import age, local_moment, short_moment
from jarvis_tui.messages import DashboardLoaded
from jarvis_tui.screens.base import PaneScreen

REFRESH_SECONDS = 5.0
SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "green"}


def _table(*columns: str) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    return table


class DashboardScreen(PaneScreen):
    PANE = "dashboard"
    BINDINGS = [
        Binding("b", "app.backup_now", "Backup now"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def compose_pane(self) -> ComposeResult:
        yield Static("", id="settings-banner")
        with VerticalScroll(id="dashboard-scroll"), Grid(id="dashboard"):
            yield Static("Reading the catalog…", id="dash-sources", classes="card")
            yield Static("", id="dash-schedules", classes="card")
            yield Static("", id="dash-places", classes="card")
            yield Static("", id="dash-alerts", classes="card")

    def on_mount(self) -> None:
        super().on_mount()
        self._show_settings_banner()
        self.load()
        if self.console.poll_seconds:
            self.set_interval(REFRESH_SECONDS, self.load)

    def action_refresh(self) -> None:
        self.load()

    def catalog_changed(self, reason: str) -> None:
        self._show_settings_banner()
        self.load()

    def _show_settings_banner(self) -> None:
        banner = self.query_one("#settings-banner", Static)
        problems = self.console.settings.problems
        banner.display = bool(problems)
        if problems:
            banner.update(
                Text(
                    f"Settings need attention: {len(problems)} problem(s); see Settings (5).",
                    style="bold",
                )
            )

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard")
    def load(self) -> None:
        console = self.console
        facts = gather_dashboard(console.access, console.clock(), console.free_space)
        self.post_message(DashboardLoaded(facts))

    def on_dashboard_loaded(self, message: DashboardLoaded) -> None:
        facts: DashboardFacts = message.facts
        self.query_one("#dash-sources", Static).update(self._sources(facts))
        self.query_one("#dash-schedules", Static).update(self._schedules(facts))
        self.query_one("#dash-places", Static).update(self._places(facts))
        self.query_one("#dash-alerts", Static).update(self._alerts(facts))

    # -- cards ------------------------------------------------------------------------------

    def _sources(self, facts: DashboardFacts) -> Table | Text:
        if facts.catalog_error:
            return Text.assemble(
                ("Catalog unavailable\n", "bold red"),
                facts.catalog_error,
                "\nCheck BACKUP_CATALOG_PATH in Settings (5); the catalog is a cache and "
                "`jarvis-tui catalog rebuild` recreates it from the repository.",
            )
        now = self.console.clock()
        max_age = self.console.settings.backup_max_age_hours
        table = _table("Source", "Last good backup", "Age")
        table.title = "Last good backup per source"
        table.title_justify = "left"
        table.title_style = "bold"
        for row in facts.sources:
            table.add_row(*self._source_cells(row, now, max_age))
        return table

    def _source_cells(self, row: SourceRow, now, max_age: int) -> tuple:
        if not row.available:
            return row.kind, Text("not in this build yet", style="dim"), ""
        if row.not_configured:
            return row.kind, Text("not configured", style="dim"), ""
        if row.last_good is None:
            return row.kind, Text("none yet: press b", style="bold red"), ""
        style = "bold red" if row.stale else "green"
        when = age(row.last_good.created_at, now)
        note = f" > {max_age} h" if row.stale else ""
        return row.kind, row.last_good.set_id, Text(when + note, style=style)

    def _schedules(self, facts: DashboardFacts) -> Table | Text:
        if facts.schedules is None:
            return Text.assemble(
                ("Schedules\n", "bold"),
                (facts.schedule_note or "The scheduler is not in this build yet.", "dim"),
            )
        now = self.console.clock()
        table = _table("Schedule", "When", "Next", "Last")
        table.title, table.title_justify, table.title_style = "Schedules", "left", "bold"
        for row in facts.schedules:
            if not row.enabled:
                table.add_row(row.name, Text("off", style="dim"), "", "")
                continue
            outcome = row.last_outcome or ""
            style = "green" if outcome == "succeeded" else ("red" if outcome else "dim")
            last = f"{short_moment(row.last_run, now)} {outcome}" if row.last_run else "never"
            table.add_row(row.name, row.words, local_moment(row.next_run), Text(last, style=style))
        if facts.schedule_note:
            table.caption = facts.schedule_note
            table.caption_justify = "left"
        return table

    def _places(self, facts: DashboardFacts) -> Table:
        table = _table("Destination", "State", "Where")
        table.title, table.title_justify, table.title_style = "Destinations", "left", "bold"
        for row in facts.destinations:
            style = (
                "green"
                if row.healthy and row.state == "ready"
                else ("dim" if row.healthy else "red")
            )
            table.add_row(row.name, Text(row.state, style=style), row.detail)
        return table

    def _alerts(self, facts: DashboardFacts) -> Table | Text:
        if not facts.alerts:
            return Text.assemble(("Recent alerts\n", "bold"), ("No alerts.", "dim"))
        now = self.console.clock()
        table = _table("When", "Severity", "Alert")
        table.title, table.title_justify, table.title_style = "Recent alerts", "left", "bold"
        for alert in facts.alerts:
            table.add_row(
                short_moment(alert.at, now),
                Text(alert.severity, style=SEVERITY_STYLES.get(alert.severity, "")),
                f"{alert.kind}: {alert.message}",
            )
        if facts.open_conditions:
            table.caption = f"{len(facts.open_conditions)} open condition(s)"
            table.caption_justify = "left"
        return table
