"""The home screen: where the repository is, settings problems, and the catalog."""

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from engines.catalog import BackupSet
from engines.config import Settings
from engines.workspace import Workspace
from jarvis_tui.output import human_size


class HomeScreen(Screen):
    BINDINGS = [("r", "refresh", "Refresh")]

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self._summary(), id="summary")
        if self.settings.problems:
            yield Static(
                "Settings need attention:\n"
                + "\n".join(f"  • {p}" for p in self.settings.problems),
                id="problems",
            )
        table = DataTable(id="catalog", cursor_type="row", zebra_stripes=True)
        table.add_columns("Backup", "Kind", "Tier", "Status", "Created (UTC)", "Size")
        yield table
        yield Static("", id="catalog-state")
        yield Footer()

    def _summary(self) -> str:
        settings = self.settings
        key_state = "configured" if settings.backup_encryption_key else "not configured (press k)"
        return (
            f"Repository  {settings.repository_dir}\n"
            f"Catalog     {settings.catalog_path}\n"
            f"Encryption  AES-256-GCM, key {key_state}; "
            f"compression {settings.backup_compression} level {settings.compression_level}"
        )

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load_catalog()

    @work(thread=True, exclusive=True, exit_on_error=False, group="catalog")
    def load_catalog(self) -> None:
        try:
            with Workspace.open(self.settings) as workspace:
                sets = workspace.catalog.list_backup_sets(limit=500)
        except Exception as error:  # shown to the operator instead of crashing
            self.app.call_from_thread(self._show_catalog_error, str(error))
            return
        self.app.call_from_thread(self._show_catalog, sets)

    def _show_catalog(self, sets: list[BackupSet]) -> None:
        table = self.query_one("#catalog", DataTable)
        table.clear()
        for backup_set in sets:
            table.add_row(
                backup_set.id,
                backup_set.kind,
                backup_set.tier or "-",
                backup_set.status,
                backup_set.created_at.strftime("%Y-%m-%d %H:%M"),
                human_size(backup_set.stored_size),
                key=backup_set.id,
            )
        state = self.query_one("#catalog-state", Static)
        state.update(
            "" if sets else "No backups yet. Run `jarvis-tui backup full` to make the first."
        )

    def _show_catalog_error(self, message: str) -> None:
        self.query_one("#catalog-state", Static).update(f"Catalog unavailable: {message}")
