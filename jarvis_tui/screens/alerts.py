"""Alerts: their history with each channel's delivery, and a test alert."""

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from jarvis_tui.alert_check import send_test_alert
from jarvis_tui.engine_access import Alert
from jarvis_tui.formatting import short_moment
from jarvis_tui.messages import AlertsLoaded, TestAlertSent, WorkspaceFailed
from jarvis_tui.screens.base import PaneScreen

SHOWN = 200
NARROW = 110  # below this width the delivery column gives way (the panel below has it)
SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "green"}


def delivery_summary(delivery: dict) -> str:
    if not delivery:
        return "waiting to be sent"
    return ", ".join(f"{channel}: {outcome}" for channel, outcome in sorted(delivery.items()))


class AlertsScreen(PaneScreen):
    PANE = "alerts"
    BINDINGS = [
        Binding("t", "test_alert", "Send test alert"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def compose_pane(self) -> ComposeResult:
        yield DataTable(id="alerts-table", cursor_type="row", zebra_stripes=True)
        yield Static("Reading alerts…", id="alert-detail")

    def on_mount(self) -> None:
        self.alerts: list[Alert] = []
        self.layout_width = 0
        self.load()

    def on_resize(self) -> None:
        if self._fit_columns():
            self._fill(self.alerts)

    def _fit_columns(self) -> bool:
        """When, severity and kind keep their width; the message takes what is left."""
        width = self.size.width
        if width == self.layout_width:
            return False
        self.layout_width = width
        table = self.query_one("#alerts-table", DataTable)
        table.clear(columns=True)
        fixed = {"When": 16, "Severity": 8, "Kind": 20}
        if width >= NARROW:
            fixed["Delivery"] = 30
        message = max(20, width - sum(fixed.values()) - 2 * (len(fixed) + 1) - 2)
        for name in ("When", "Severity", "Kind", "Message", "Delivery"):
            if name == "Message":
                table.add_column(name, key=name, width=message)
            elif name in fixed:
                table.add_column(name, key=name, width=fixed[name])
        return True

    def catalog_changed(self, reason: str) -> None:
        self.load()

    def jobs_changed(self, jobs) -> None:
        if self.app.screen is self:
            self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="alerts")
    def load(self) -> None:
        try:
            alerts = self.console.access.catalog().list_alerts(limit=SHOWN)
        except Exception as error:
            self.post_message(WorkspaceFailed("alerts", str(error) or type(error).__name__))
            return
        self.post_message(AlertsLoaded(alerts))

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        if message.alerts == self.alerts and self.layout_width:
            return
        self._fit_columns()
        self._fill(message.alerts)

    def _fill(self, alerts: list[Alert]) -> None:
        self.alerts = alerts
        table = self.query_one("#alerts-table", DataTable)
        keep = table.cursor_row
        table.clear()
        now = self.console.clock()
        with_delivery = len(table.columns) == 5
        for alert in self.alerts:
            cells = [
                short_moment(alert.at, now),
                Text(alert.severity, style=SEVERITY_STYLES.get(alert.severity, "")),
                alert.kind,
                alert.message,
            ]
            if with_delivery:
                cells.append(delivery_summary(alert.delivery))
            table.add_row(*cells, key=str(alert.id))
        if self.alerts:
            table.move_cursor(row=min(keep or 0, len(self.alerts) - 1))
            self._show_detail(self.alerts[table.cursor_row])
        else:
            self.query_one("#alert-detail", Static).update(
                Text(
                    "No alerts so far. t sends a test alert to every configured channel.",
                    style="dim",
                )
            )

    def on_workspace_failed(self, message: WorkspaceFailed) -> None:
        self.query_one("#alert-detail", Static).update(
            Text(f"Alerts unavailable: {message.error}", style="red")
        )

    @on(DataTable.RowHighlighted, "#alerts-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.alerts):
            self._show_detail(self.alerts[event.cursor_row])

    def _show_detail(self, alert: Alert) -> None:
        text = Text.assemble(
            (
                f"{alert.severity} · {alert.kind} · {alert.at.astimezone():%Y-%m-%d %H:%M:%S}\n",
                SEVERITY_STYLES.get(alert.severity, ""),
            ),
            alert.message,
        )
        for channel, outcome in sorted(alert.delivery.items()):
            style = "red" if str(outcome).startswith("failed") else "green"
            text.append(f"\n  {channel}: ", style="bold")
            text.append(str(outcome), style=style)
        self.query_one("#alert-detail", Static).update(text)

    def action_test_alert(self) -> None:
        self.notify("Sending a test alert to every configured channel…", timeout=3)
        self.send_test()

    @work(thread=True, exclusive=True, exit_on_error=False, group="test-alert")
    def send_test(self) -> None:
        try:
            outcome = send_test_alert(self.console.access)
        except Exception as error:
            outcome = f"the test alert could not be sent: {error}"
        self.post_message(TestAlertSent(outcome))

    def on_test_alert_sent(self, message: TestAlertSent) -> None:
        self.notify(message.outcome, title="Test alert", timeout=10)
        self.load()
