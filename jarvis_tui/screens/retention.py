"""Retention preview (m, c): every backup kept or deleted by the next cleanup, and why.

The plan is cleanup's own dry run, run as a job (the same engine decision the CLI's
dry run prints); c runs the cleanup itself, after a confirmation, as a job.
"""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from jarvis_tui.messages import RetentionPlanFailed, RetentionPlanned
from jarvis_tui.screens.base import ConsoleScreen
from jarvis_tui.screens.confirm import ConfirmScreen


class RetentionScreen(ConsoleScreen):
    TITLE = "Retention"
    DEFAULT_CSS = """
    RetentionScreen #retention-sets { height: 1fr; }
    RetentionScreen #retention-why { height: auto; padding: 0 1; background: $panel; }
    """
    BINDINGS = [
        Binding("c", "cleanup", "Run cleanup"),
        Binding("f5", "refresh", "Refresh"),
        Binding("escape", "app.pop_screen", "Close"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(
            Text(" Retention: which backups the next cleanup keeps, and why", style="bold"),
            id="wizard-title",
        )
        yield Static("Asking retention (nothing is deleted)…", id="retention-summary")
        table = DataTable(id="retention-sets", cursor_type="row", zebra_stripes=True)
        # The set id holds its kind and start time: no more columns, so the reasons fit in
        # 80 columns.
        table.add_columns("Backup", "Decision", "Why")
        yield table
        yield Static("", id="retention-why")
        yield Footer()

    def on_mount(self) -> None:
        self.plan = None
        self.console.catalog_signal.subscribe(self, self._catalog_changed)
        self.query_one(DataTable).focus()
        self.action_refresh()

    def _catalog_changed(self, reason: str) -> None:
        # Any job's end is announced too, this screen's own dry run among them.
        if not reason.startswith("job "):
            self.action_refresh()

    def action_refresh(self) -> None:
        self.console.maintenance.plan_retention(self)

    def on_retention_planned(self, message: RetentionPlanned) -> None:
        plan = self.plan = message.plan
        doomed = len(plan.doomed)
        summary = Text(f"Retention {plan.policy}: ")
        summary.append(f"{len(plan.rows) - doomed} kept, ")
        summary.append(f"{doomed} to delete", style="bold red" if doomed else "")
        summary.append(". Nothing has been deleted yet: c runs the cleanup.")
        if plan.unfinished:
            summary.append(
                f"\nAn earlier cleanup left {len(plan.unfinished)} backup(s) half deleted; "
                f"the cleanup finishes them first: {', '.join(plan.unfinished)}",
                style="yellow",
            )
        self.query_one("#retention-summary", Static).update(summary)
        table = self.query_one(DataTable)
        table.clear()
        for row in plan.rows:
            decision = Text("keep", style="green") if row.keep else Text("DELETE", "bold red")
            why = row.why if row.status in ("complete", "failed") else f"{row.status}; {row.why}"
            table.add_row(row.set_id, decision, why)
        self._explain(table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._explain(event.cursor_row)

    def _explain(self, index: int) -> None:
        rows = self.plan.rows if self.plan is not None else []
        shown = rows[index].explained() if 0 <= index < len(rows) else ""
        self.query_one("#retention-why", Static).update(shown)

    def on_retention_plan_failed(self, message: RetentionPlanFailed) -> None:
        self.query_one("#retention-summary", Static).update(
            Text(f"Retention could not be worked out: {message.error}", style="red")
        )

    def action_cleanup(self) -> None:
        if self.plan is None:
            self.notify("Still asking retention; a moment.", severity="warning")
            return
        doomed = len(self.plan.doomed)
        question = (
            f"Deletes the {doomed} backup(s) marked DELETE from every destination"
            if doomed
            else "No backup is marked DELETE; the cleanup only prunes"
        )
        question += (
            ", then prunes the file data no snapshot references. No other backup is "
            "deleted, even if one made meanwhile changes retention's list. "
            "This cannot be undone."
        )
        # What the operator sees now is all the cleanup may delete: the plan can be asked
        # again (a backup landing) while the question is open.
        approved = (*self.plan.unfinished, *(row.set_id for row in self.plan.doomed))
        self.app.push_screen(
            ConfirmScreen("Run cleanup?", question, "Run cleanup"),
            lambda confirmed: self._start(confirmed, approved),
        )

    def _start(self, confirmed: bool | None, approved: tuple[str, ...]) -> None:
        if confirmed:
            self.console.maintenance.run("cleanup", approved)
            self.notify("Cleaning up… (progress in Jobs, 3)", timeout=4)
