"""The PostgreSQL wizard's own choices for a restore into a database: the target database
and the options (drop existing, globals, parallel jobs, tables)."""

from datetime import UTC

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, RadioButton, RadioSet, SelectionList, Static

from jarvis_tui.formatting import count
from jarvis_tui.restore_access import check_database_name
from jarvis_tui.widgets.marked_toggles import MarkedCheckbox, MarkedRadioButton, MarkedSelectionList
from jarvis_tui.widgets.wizard_step import WizardStep


class PostgresTargetStep(WizardStep):
    TITLE = "Target"

    def compose(self) -> ComposeResult:
        yield Static("Where should the backup go?", classes="step-intro")
        new = self.wizard.plan.new_database
        with RadioSet(id="pg-target"):
            yield MarkedRadioButton(
                "A new database (nothing existing is touched)", id="pg-new", value=new
            )
            yield MarkedRadioButton("The database it came from", id="pg-same", value=not new)
        with Horizontal(classes="field"):
            yield Static("New database name ", classes="label")
            yield Input(compact=True, id="pg-new-name")
        yield Static("", id="pg-target-note", classes="muted")

    def enter(self) -> None:
        plan = self.wizard.plan
        source = self.wizard.source_database()
        self.query_one("#pg-same", RadioButton).label = f"The database it came from: {source}"
        name = self.query_one("#pg-new-name", Input)
        if not plan.new_name:
            stamp = self.wizard.console.clock().astimezone(UTC).strftime("%Y%m%d")
            plan.new_name = f"{source}_restored_{stamp}"
        name.value = plan.new_name
        # Only switch the chosen button on: the set turns the other off. Switching one
        # off as well would be undone by the set ("clicked off"), leaving both on.
        self.query_one("#pg-new" if plan.new_database else "#pg-same", RadioButton).value = True
        self._explain()
        self.query_one(RadioSet).focus()

    @on(RadioSet.Changed, "#pg-target")
    def _changed(self) -> None:
        self._explain()

    def _new_chosen(self) -> bool:
        return self.query_one("#pg-new", RadioButton).value

    def _explain(self) -> None:
        new = self._new_chosen()
        self.query_one("#pg-new-name", Input).disabled = not new
        note = (
            "Restored into a scratch database, checked against the backup, then renamed."
            if new
            else "A database that holds tables is only replaced with 'drop existing' (next "
            "step); the previous one is kept as NAME_pre_restore_<time> unless discarded."
        )
        self.query_one("#pg-target-note", Static).update(note)

    def problem(self) -> str | None:
        if self._new_chosen():
            name = self.query_one("#pg-new-name", Input).value.strip()
            if not name:
                return "Name the new database."
            return check_database_name(name)
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        plan.new_database = self._new_chosen()
        plan.new_name = self.query_one("#pg-new-name", Input).value.strip()


class PostgresOptionsStep(WizardStep):
    TITLE = "Options"

    def compose(self) -> ComposeResult:
        yield MarkedCheckbox(
            compact=True, label="Drop existing: replace a target that holds tables", id="pg-drop"
        )
        yield MarkedCheckbox(
            compact=True, label="Discard the previous database after the swap", id="pg-discard"
        )
        yield MarkedCheckbox(
            compact=True, label="Also restore roles and tablespaces (globals)", id="pg-globals"
        )
        with Horizontal(classes="field"):
            yield Static("Parallel jobs ", classes="label")
            yield Input(compact=True, id="pg-jobs", type="integer")
        yield Static("Only these tables (none ticked: the whole database):", classes="muted")
        yield MarkedSelectionList[str](id="pg-tables")

    def enter(self) -> None:
        plan = self.wizard.plan
        self.query_one("#pg-drop", Checkbox).value = plan.drop_existing
        self.query_one("#pg-discard", Checkbox).value = plan.discard_previous
        self.query_one("#pg-globals", Checkbox).value = plan.with_globals
        self.query_one("#pg-jobs", Input).value = str(plan.jobs)
        tables = self.query_one("#pg-tables", SelectionList)
        tables.clear_options()
        for table in self.wizard.reference_metadata.get("tables", []):
            name = f"{table.get('schema')}.{table.get('name')}"
            rows = table.get("rows")
            label = name if rows is None else f"{name} ({count(rows, 'row')})"
            tables.add_option((label, name, name in plan.tables))
        self.query_one("#pg-drop", Checkbox).focus()

    def problem(self) -> str | None:
        jobs = self.query_one("#pg-jobs", Input).value.strip()
        if not jobs.isdigit() or int(jobs) < 1:
            return f"Parallel jobs must be a whole number of at least 1, got {jobs or 'nothing'}."
        drop = self.query_one("#pg-drop", Checkbox).value
        if self.query_one("#pg-discard", Checkbox).value and not drop:
            return "Discarding the previous database only applies with drop existing."
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        plan.drop_existing = self.query_one("#pg-drop", Checkbox).value
        plan.discard_previous = self.query_one("#pg-discard", Checkbox).value
        plan.with_globals = self.query_one("#pg-globals", Checkbox).value
        plan.jobs = int(self.query_one("#pg-jobs", Input).value)
        plan.tables = tuple(self.query_one("#pg-tables", SelectionList).selected)
