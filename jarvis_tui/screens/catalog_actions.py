"""What the catalog pane can do with the selected set: verify, restore, export, sync, delete."""

from pathlib import Path

from engines.catalog import BackupSet
from jarvis_tui.catalog_view import SetDetail
from jarvis_tui.screens.base import PaneScreen
from jarvis_tui.screens.confirm import TypedConfirmScreen
from jarvis_tui.screens.export import ExportRequest, ExportScreen
from jarvis_tui.screens.restore_chooser import LABELS, open_restore, wizard_available
from jarvis_tui.set_deletion import deletion_available
from jarvis_tui.widgets.backup_table import BackupTable

SYNC_UNAVAILABLE = (
    "Sync to S3 is not in this build yet: the S3 destination comes with a later issue."
)


class CatalogActions(PaneScreen):
    """The catalog pane's actions; CatalogScreen adds the table, filter and detail panel."""

    detail: SetDetail | None = None

    def _selected(self) -> BackupSet | None:
        current = self.query_one(BackupTable).current
        if current is None:
            self.notify("Select a backup first.", severity="warning")
        return current

    def _selected_detail(self) -> SetDetail | None:
        current = self._selected()
        if current is None:
            return None
        if self.detail is None or self.detail.backup_set.id != current.id:
            self.notify("Still reading this backup's details…", severity="warning")
            return None
        return self.detail

    def action_verify(self) -> None:
        current = self._selected()
        if current is not None:
            self.console.runner.verify(current.id, self.app)
            self.notify(f"Verifying {current.id}…", timeout=3)

    def action_restore(self) -> None:
        detail = self._selected_detail()
        if detail is None:
            return
        sources = [a.source for a in detail.complete_artifacts]
        kinds = [kind for kind in LABELS if kind in sources]
        if not kinds:
            self.notify("This backup holds no complete artifact to restore.", severity="warning")
            return
        usable = [kind for kind in kinds if wizard_available(kind)]
        open_restore(self.console, (usable or kinds)[0], detail.backup_set.id)

    def action_export(self) -> None:
        detail = self._selected_detail()
        if detail is None:
            return
        artifacts = detail.complete_artifacts
        if not artifacts:
            self.notify("This backup holds no complete artifact to export.", severity="warning")
            return
        set_id = detail.backup_set.id
        postgres = any(a.source == "postgres" for a in artifacts)
        screen = ExportScreen(set_id, len(artifacts), Path.cwd() / "exports" / set_id, postgres)

        def chosen(request: ExportRequest | None) -> None:
            if request is None:
                return
            picked = [a for a in artifacts if not request.as_sql or a.source == "postgres"]
            self.console.runner.export(
                [a.relpath for a in picked], request.folder, self.app, as_sql=request.as_sql
            )

        self.app.push_screen(screen, chosen)

    def action_sync(self) -> None:
        if self._selected() is not None:
            self.notify(SYNC_UNAVAILABLE, severity="warning", timeout=8)

    def action_delete(self) -> None:
        current = self._selected()
        if current is None:
            return
        if not deletion_available():
            self.notify(
                "Deleting a backup is not in this build yet (it comes with retention).",
                severity="warning",
            )
            return
        screen = TypedConfirmScreen(
            f"Delete {current.id}?",
            "Its artifacts and sidecars are removed from the repository and the set is "
            "forgotten by the catalog. This cannot be undone.",
            current.id,
            "Delete",
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.console.runner.delete(current.id, self.app)

        self.app.push_screen(screen, confirmed)
