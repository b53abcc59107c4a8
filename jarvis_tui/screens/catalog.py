"""Catalog: every backup set, a filter, the selected set's details, and what to do with it."""

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Static

from jarvis_tui.catalog_view import (
    CatalogIndex,
    SetDetail,
    copy_places,
    load_detail,
    load_extras,
)
from jarvis_tui.engine_access import BackupSet
from jarvis_tui.messages import (
    CatalogFiltered,
    CatalogLoaded,
    DetailLoaded,
    ExtrasLoaded,
    WorkspaceFailed,
)
from jarvis_tui.screens.catalog_actions import CatalogActions
from jarvis_tui.widgets.backup_table import BackupTable
from jarvis_tui.widgets.set_detail import SetDetailPanel

DETAIL_DELAY_S = 0.25  # the cursor (or the filter text) rests this long before details load
# A filter pass over 20,000 in-memory sets takes a few milliseconds: less than the two
# thread hand-overs a worker costs. Larger catalogs filter in a worker.
INLINE_FILTER_LIMIT = 20_000
EMPTY_CATALOG = "No backups yet. Press b to back up now."


class CatalogScreen(CatalogActions):
    PANE = "catalog"
    BINDINGS = [
        # Priority: the app runs it as the key arrives, before it routes the keys typed
        # right after "/" (a plain binding runs only once "/" has come back from the table,
        # when those keys are already on their way to the table and its letter keys).
        # Footer space at 80 columns: the filter line shows its key, b is everywhere.
        Binding("slash", "focus_filter", "Filter", priority=True, show=False),
        Binding("b", "app.backup_now", "", show=False),
        Binding("v", "verify", "Verify"),
        Binding("V", "verify_data", "Verify, reading all data", show=False),
        Binding("r", "restore", "Restore"),
        Binding("e", "export", "Export"),
        Binding("d", "diff", "Compare with another snapshot", show=False),
        Binding("s", "sync", "Sync S3"),
        Binding("x,delete", "delete", "Delete"),
        Binding("f5", "reload", "Reload", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def compose_pane(self) -> ComposeResult:
        with Horizontal(id="catalog-body"):
            with Vertical(id="catalog-main"):
                yield Input(
                    placeholder="Filter: words in id, source, tier, status, date…  (/)",
                    id="catalog-filter",
                    compact=True,
                )
                yield BackupTable(id="catalog-sets")
                yield Static("Reading the catalog…", id="catalog-status")
            yield SetDetailPanel(id="catalog-detail")

    def on_mount(self) -> None:
        self.index = CatalogIndex([])
        self.query_text = ""
        self.detail: SetDetail | None = None
        self._detail_timer: Timer | None = None
        self.query_one(BackupTable).focus()
        self.load()

    # -- loading and filtering --------------------------------------------------------------

    def catalog_changed(self, reason: str) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    def action_verify_data(self) -> None:
        """Verify the selected set and read every chunk of its files snapshot too."""
        current = self._selected()
        if current is not None:
            self.console.runner.verify(current.id, self.app, read_data=True)
            self.notify(f"Verifying {current.id}, reading all data…", timeout=3)

    @work(thread=True, exclusive=True, exit_on_error=False, group="catalog-load")
    def load(self) -> None:
        try:
            sets = self.console.access.catalog().list_backup_sets()
        except Exception as error:
            self.post_message(WorkspaceFailed("catalog", str(error) or type(error).__name__))
            return
        self.post_message(CatalogLoaded(CatalogIndex(sets, copy_places(self.console.access))))

    def on_catalog_loaded(self, message: CatalogLoaded) -> None:
        self.index = message.index
        table = self.query_one(BackupTable)
        table.extras.clear()
        table.show_copies(bool(message.index.copy_places))
        self.detail = None  # the selected set's copies may have changed: load it again
        self.filter_sets(self.query_text)

    def on_workspace_failed(self, message: WorkspaceFailed) -> None:
        table = self.query_one(BackupTable)
        table.empty_text = f"Catalog unavailable: {message.error}"
        table.show_rows([])
        self.query_one("#catalog-status", Static).update(
            "Check BACKUP_CATALOG_PATH in Settings (5); F5 tries again; m, g rebuilds the "
            "catalog from the repository."
        )

    @on(Input.Changed, "#catalog-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.filter_sets(event.value)

    def filter_sets(self, query: str) -> None:
        """Filter the in-memory index: here while it is small, in a worker beyond that."""
        if len(self.index) <= INLINE_FILTER_LIMIT:
            self.on_catalog_filtered(self._filtered(query))
        else:
            self.filter_in_worker(query)

    def _filtered(self, query: str) -> CatalogFiltered:
        started = time.perf_counter()
        index = self.index
        sets = index.filter(query)
        return CatalogFiltered(query, sets, len(index), time.perf_counter() - started)

    @work(thread=True, exclusive=True, exit_on_error=False, group="catalog-filter")
    def filter_in_worker(self, query: str) -> None:
        self.post_message(self._filtered(query))

    def on_catalog_filtered(self, message: CatalogFiltered) -> None:
        if message.query != self.query_text:
            return  # an older filter finished after a newer one was asked for
        table = self.query_one(BackupTable)
        keep = table.current.id if table.current else None
        if message.total == 0:
            table.empty_text = EMPTY_CATALOG
        else:
            table.empty_text = f"No backup matches “{message.query}”. Escape clears the filter."
        table.show_rows(message.sets, keep_id=keep)
        shown = len(message.sets)
        status = f"{shown:,} of {message.total:,} backups"
        if message.query.strip():
            status += f" matching “{message.query.strip()}”"
        self.query_one("#catalog-status", Static).update(status)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_filter" and self.focused is self.query_one("#catalog-filter"):
            return False  # "/" typed in the filter is a character of the filter
        return super().check_action(action, parameters)

    def action_focus_filter(self) -> None:
        # Now, not after the queued keys: Widget.focus() moves focus only once they are routed.
        self.set_focus(self.query_one("#catalog-filter", Input))

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#catalog-filter", Input)
        if filter_input.value:
            filter_input.value = ""
        self.query_one(BackupTable).focus()

    @on(Input.Submitted, "#catalog-filter")
    def _filter_submitted(self) -> None:
        self.query_one(BackupTable).focus()

    # -- rows in view and the selected set --------------------------------------------------

    def on_backup_table_rows_shown(self, message: BackupTable.RowsShown) -> None:
        self.load_extras(message.set_ids)

    @work(thread=True, exclusive=False, exit_on_error=False, group="catalog-extras")
    def load_extras(self, set_ids: list[str]) -> None:
        try:
            extras = load_extras(self.console.access, set_ids)
        except Exception:
            return  # the cells keep their placeholder; the next scroll asks again
        self.post_message(ExtrasLoaded(extras))

    def on_extras_loaded(self, message: ExtrasLoaded) -> None:
        self.query_one(BackupTable).add_extras(message.extras)

    def on_backup_table_highlighted(self, message: BackupTable.Highlighted) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        backup_set = message.backup_set
        if backup_set is None:
            self.detail = None
            self.query_one(SetDetailPanel).show(None)
            return
        if self.detail is not None and self.detail.backup_set == backup_set:
            return  # a new filter kept the same set under the cursor: nothing to redraw
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, lambda: self.load_detail(backup_set))

    def on_backup_table_selected(self, message: BackupTable.Selected) -> None:
        self.query_one(SetDetailPanel).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="catalog-detail")
    def load_detail(self, backup_set: BackupSet) -> None:
        try:
            detail = load_detail(self.console.access, backup_set.id)
        except Exception as error:
            self.call_from_thread(self.query_one(SetDetailPanel).show, None, str(error))
            return
        self.post_message(DetailLoaded(detail))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        current = self.query_one(BackupTable).current
        if current is None or current.id != message.detail.backup_set.id:
            return
        self.detail = message.detail
        self.query_one(SetDetailPanel).show(message.detail)
