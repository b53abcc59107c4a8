"""The first step of every restore wizard: pick a good backup of the wizard's kind."""

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from jarvis_tui.formatting import human_size, local_moment
from jarvis_tui.messages import RestorableSetsLoaded, WorkspaceFailed
from jarvis_tui.restorable import RestorableSet, restorable_sets
from jarvis_tui.widgets.wizard_step import WizardStep


class BackupPickStep(WizardStep):
    TITLE = "Backup"

    def compose(self) -> ComposeResult:
        yield Static("", id="pick-intro", classes="step-intro")
        table = DataTable(id="pick-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("Backup", "Created", "Size", "Contents")
        yield table
        yield Static("", id="pick-note", classes="muted")

    def on_mount(self) -> None:
        self.choices: list[RestorableSet] = []
        self.loaded = False
        kind = self.wizard.KIND
        self.query_one("#pick-intro", Static).update(
            f"Pick the {kind} backup to restore (good backups, newest first); enter goes on."
        )
        self.query_one("#pick-note", Static).update(self.wizard.moment_note())

    def enter(self) -> None:
        if not self.loaded:
            self.load()
        self.query_one("#pick-table", DataTable).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="restorable")
    def load(self) -> None:
        kind = self.wizard.KIND
        try:
            choices = restorable_sets(self.wizard.console.access.catalog(), kind)
        except Exception as error:
            self.post_message(WorkspaceFailed("backups", str(error) or type(error).__name__))
            return
        self.post_message(RestorableSetsLoaded(choices))

    def on_restorable_sets_loaded(self, message: RestorableSetsLoaded) -> None:
        self.loaded = True
        self.choices = message.sets
        table = self.query_one("#pick-table", DataTable)
        table.clear()
        for choice in self.choices:
            backup_set = choice.backup_set
            table.add_row(
                backup_set.id,
                local_moment(backup_set.created_at),
                human_size(backup_set.stored_size),
                self.wizard.describe_backup(choice.metadata),
                key=backup_set.id,
            )
        if not self.choices:
            self.query_one("#pick-intro", Static).update(
                f"There is no good {self.wizard.KIND} backup in the catalog yet. Leave with "
                "escape and make one with b (back up now)."
            )
        wanted = self.wizard.preselected_set
        if wanted:
            ids = [c.backup_set.id for c in self.choices]
            if wanted in ids:
                table.move_cursor(row=ids.index(wanted))
            else:
                self.wizard.say(f"{wanted} holds no complete {self.wizard.KIND} backup")

    def on_workspace_failed(self, message: WorkspaceFailed) -> None:
        message.stop()
        self.query_one("#pick-intro", Static).update(
            Text(f"The catalog could not be read: {message.error}", style="red")
        )

    @on(DataTable.RowSelected, "#pick-table")
    def _chosen(self) -> None:
        self.wizard.action_next()

    def selected(self) -> RestorableSet | None:
        table = self.query_one("#pick-table", DataTable)
        row = table.cursor_row
        if not self.choices or row is None or not 0 <= row < len(self.choices):
            return None
        return self.choices[row]

    def problem(self) -> str | None:
        if not self.loaded:
            return "Still reading the catalog…"
        if self.selected() is None:
            return f"There is no {self.wizard.KIND} backup to pick."
        return None

    def leave(self) -> None:
        chosen = self.selected()
        assert chosen is not None
        self.wizard.chosen = chosen
        self.wizard.reference = chosen.reference
        self.wizard.reference_metadata = chosen.metadata
