"""Dashboard: schedules, the last good backup of each source, places, alerts; live."""

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from jarvis_tui.dashboard_view import (
    DashboardFacts,
    PitrFacts,
    PitrReader,
    ServerProbe,
    SourceRow,
    gather_dashboard,
    probe_servers,
)
from jarvis_tui.engine_access import all_problems
from jarvis_tui.formatting import duration, local_moment, short_moment
from jarvis_tui.messages import DashboardLoaded, PitrRead, ServersProbed
from jarvis_tui.screens.base import PaneScreen

REFRESH_SECONDS = 5.0
PROBE_SECONDS = 30.0
SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "green"}
# A word beside each colour (as on the Health screen), so a monochrome terminal shows it too.
PITR_STATES = {
    "ok": ("✓ archiving", "green"),
    "warning": ("! behind", "yellow"),
    "failed": ("✗ FAILING", "bold red"),
    "unknown": ("? unknown", "yellow"),
}


def _table(*columns: str, shrinking: str | None = None) -> Table:
    """Cells cut with an ellipsis; a long text goes in the `shrinking` column, which alone
    gives way (else rich takes an equal share from every column: one character each)."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    for column in columns:
        ratio = 1 if column == shrinking else None
        table.add_column(column, no_wrap=True, overflow="ellipsis", ratio=ratio)
    return table


class DashboardScreen(PaneScreen):
    PANE = "dashboard"
    BINDINGS = [
        Binding("b", "app.backup_now", "Backup now"),
        Binding("m", "app.maintenance", "Maintenance"),
        # Off the footer (full at 80 columns): the cards refresh by themselves anyway.
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def compose_pane(self) -> ComposeResult:
        yield Static("", id="settings-banner")
        with VerticalScroll(id="dashboard-scroll"), Grid(id="dashboard"):
            yield Static("Reading the catalog…", id="dash-sources", classes="card")
            yield Static("", id="dash-schedules", classes="card")
            yield Static("", id="dash-places", classes="card")
            yield Static("", id="dash-alerts", classes="card")
            yield Static("", id="dash-pitr", classes="card")

    def on_mount(self) -> None:
        self.facts: DashboardFacts | None = None
        self.probes: dict[str, ServerProbe] = {}
        self.pitr_reader = PitrReader()
        self.query_one("#dash-pitr", Static).display = False  # until the server archives
        self._show_settings_banner()
        self.load()  # the servers are probed once this first pass is on the screen
        if self.console.poll_seconds:
            self.set_interval(REFRESH_SECONDS, self.load)
            self.set_interval(PROBE_SECONDS, self.probe)
            self.set_interval(PROBE_SECONDS, self.read_pitr)

    def action_refresh(self) -> None:
        self.load()
        self.probe()
        self.read_pitr()

    def catalog_changed(self, reason: str) -> None:
        self._show_settings_banner()
        self.load()
        if reason == "settings reloaded":
            self.probe()
            self.read_pitr()

    def _show_settings_banner(self) -> None:
        banner = self.query_one("#settings-banner", Static)
        problems = all_problems(self.console.settings)
        self.settings_problems = problems
        banner.display = bool(problems)
        if problems:
            text = Text(
                f"Settings need attention: {len(problems)} problem(s); see Settings (5).",
                style="bold",
            )
            for problem in problems:
                text.append(f"\n  {problem}", style="red")
            banner.update(text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard")
    def load(self) -> None:
        console = self.console
        facts = gather_dashboard(console.access, console.clock(), console.disk_space)
        self.post_message(DashboardLoaded(facts))

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard-probes")
    def probe(self) -> None:
        try:
            probes = probe_servers(self.console.settings)
        except Exception as error:  # a probe that breaks is itself worth showing
            probes = {"servers": ServerProbe("servers", False, str(error))}
        self.post_message(ServersProbed(probes))

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard-pitr")
    def read_pitr(self) -> None:
        console = self.console
        try:
            facts = self.pitr_reader.read(console.access, console.clock())
        except Exception as error:  # the card says so rather than the worker dying
            facts = PitrFacts(True, "unknown", [], "", [str(error) or type(error).__name__])
        self.post_message(PitrRead(facts))

    def on_dashboard_loaded(self, message: DashboardLoaded) -> None:
        first = self.facts is None
        self.facts = message.facts
        self._render_cards()
        if first:
            # Probing loads the database drivers: after the first paint, not before it.
            self.call_after_refresh(self.probe)
            self.call_after_refresh(self.read_pitr)

    def on_servers_probed(self, message: ServersProbed) -> None:
        self.probes = message.probes
        self._render_cards()

    def on_pitr_read(self, message: PitrRead) -> None:
        card = self.query_one("#dash-pitr", Static)
        card.display = message.facts.shown
        if message.facts.shown:
            card.update(self._pitr(message.facts))

    def _render_cards(self) -> None:
        facts = self.facts
        if facts is None:
            return
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
                "\nCheck BACKUP_CATALOG_PATH in Settings (5); the catalog is a cache, and "
                "Maintenance (m), Rebuild the catalog (g) recreates it from the repository.",
            )
        max_age = self.console.settings.backup_max_age_hours
        table = _table("Source", "Last good backup", "Age", "Server")
        table.title = f"Sources (backups older than {max_age} h are red)"
        table.title_justify, table.title_style = "left", "bold"
        unreachable = []
        for row in facts.sources:
            probe = self.probes.get(row.kind)
            table.add_row(*self._source_cells(row), self._server_cell(probe))
            if probe is not None and not probe.ok:
                unreachable.append(f"{row.kind}: {probe.detail}")
        if unreachable:
            table.caption = "\n".join(unreachable)
            table.caption_justify, table.caption_style = "left", "red"
        return table

    def _server_cell(self, probe: ServerProbe | None) -> Text:
        if probe is None:
            return Text("")
        return Text("answers", style="green") if probe.ok else Text("UNREACHABLE", style="bold red")

    def _source_cells(self, row: SourceRow) -> tuple:
        if row.not_configured:
            return row.kind, Text("not configured", style="dim"), ""
        fresh = row.freshness
        if fresh is None or fresh.set_id is None:
            if self.settings_problems:  # b would only fail: the banner says what to fix
                return row.kind, Text("none yet: fix Settings (5)", style="bold red"), ""
            return row.kind, Text("none yet: press b", style="bold red"), ""
        style = "bold red" if fresh.too_old else "green"
        when = duration(fresh.age) if fresh.age is not None else "-"
        return row.kind, fresh.set_id, Text(when, style=style)

    def _schedules(self, facts: DashboardFacts) -> Table | Text:
        if not facts.schedules:
            return Text.assemble(("Schedules\n", "bold"), ("No schedule is known.", "dim"))
        now = self.console.clock()
        table = _table("Schedule", "When", "Next", "Last")
        table.title = f"Schedules ({facts.timezone})" if facts.timezone else "Schedules"
        table.title_justify, table.title_style = "left", "bold"
        for schedule in facts.schedules:
            if not schedule.enabled:
                table.add_row(schedule.name, Text("off", style="dim"), "", "")
                continue
            last = schedule.last_run
            if last is None:
                last_text = Text("never", style="dim")
            else:
                outcome = last.outcome or "?"
                style = {"succeeded": "green", "running": "yellow"}.get(outcome, "red")
                last_text = Text(f"{short_moment(last.planned_at, now)} {outcome}", style=style)
            table.add_row(schedule.name, schedule.words, local_moment(schedule.next_run), last_text)
        table.caption = f"Scheduler: {facts.scheduler_holder}"
        table.caption_justify = "left"
        return table

    def _places(self, facts: DashboardFacts) -> Table:
        table = _table("Destination", "State", "Where")
        table.title, table.title_justify, table.title_style = "Destinations", "left", "bold"
        for row in facts.destinations:
            style = (
                "green"
                if row.healthy and row.state in ("ready", "in sync")
                else ("dim" if row.healthy else "red")
            )
            table.add_row(row.name, Text(row.state, style=style), row.detail)
        notes = [row.note for row in facts.destinations if row.note]
        if notes:
            table.caption = "\n".join(notes)
            healthy = all(row.healthy for row in facts.destinations if row.note)
            table.caption_justify, table.caption_style = "left", "" if healthy else "red"
        return table

    def _alerts(self, facts: DashboardFacts) -> Table | Text:
        if not facts.alerts:
            return Text.assemble(("Recent alerts\n", "bold"), ("No alerts.", "dim"))
        now = self.console.clock()
        table = _table("When", "Severity", "Alert", shrinking="Alert")
        table.title, table.title_justify, table.title_style = "Recent alerts", "left", "bold"
        for alert in facts.alerts:
            table.add_row(
                short_moment(alert.at, now),
                Text(alert.severity, style=SEVERITY_STYLES.get(alert.severity, "")),
                f"{alert.kind}: {alert.message}",
            )
        if facts.open_alerts:
            table.caption = f"{len(facts.open_alerts)} open condition(s)"
            table.caption_justify = "left"
        return table

    def _pitr(self, facts: PitrFacts) -> Table:
        word, style = PITR_STATES[facts.state]
        table = _table("What", "Detail", shrinking="Detail")
        table.show_header = False
        table.columns[1].no_wrap = False  # a window of two ranges, a long lag: wrapped, not cut
        table.title = Text.assemble(("Point-in-time recovery  ", "bold"), (word, style))
        table.title_justify = "left"
        for number, line in enumerate(facts.window):
            table.add_row("Window" if number == 0 else "", line)
        if facts.lag:
            table.add_row("Archive", facts.lag)
        if facts.problems:
            table.caption = "\n".join(facts.problems)
            table.caption_justify, table.caption_style = "left", style
        return table
