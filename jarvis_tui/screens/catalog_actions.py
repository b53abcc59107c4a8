"""What the catalog pane can do with the selected set: verify, restore, export, sync, delete."""

from pathlib import Path

from textual import work

from jarvis_tui.catalog_view import SetDetail
from jarvis_tui.engine_access import BackupSet
from jarvis_tui.messages import DeletionChecked
from jarvis_tui.screens.base import PaneScreen
from jarvis_tui.screens.confirm import TypedConfirmScreen
from jarvis_tui.screens.export import ExportRequest, ExportScreen
from jarvis_tui.screens.restore_chooser import open_restore, restore_labels
from jarvis_tui.widgets.backup_table import BackupTable

NO_COPY_DESTINATION = "No copy destination is configured (S3_ENABLED is off); nothing to sync."


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
        sources = sorted({a.source for a in detail.complete_artifacts})
        kinds = [kind for kind in restore_labels() if kind in sources]
        if not sources:
            self.notify("This backup holds no complete artifact to restore.", severity="warning")
            return
        if not kinds:
            self.notify(
                f"The console has no wizard for {', '.join(sources)} yet; use "
                f"`jarvis-tui restore {sources[0]} {detail.backup_set.id}`.",
                severity="warning",
                timeout=10,
            )
            return
        open_restore(self.console, kinds[0], detail.backup_set.id)

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
        files = any(a.source == "files" for a in artifacts)
        folder = Path.cwd() / "exports" / set_id
        screen = ExportScreen(set_id, len(artifacts), folder, postgres, files)

        def chosen(request: ExportRequest | None) -> None:
            if request is None:
                return
            picked = [a for a in artifacts if not request.as_sql or a.source == "postgres"]
            self.console.runner.export(
                [a.relpath for a in picked], request.folder, self.app, as_sql=request.as_sql
            )

        self.app.push_screen(screen, chosen)

    def action_diff(self) -> None:
        """The selected set's files snapshot against another (its predecessor first)."""
        detail = self._selected_detail()
        if detail is None:
            return
        if not any(a.source == "files" for a in detail.complete_artifacts):
            self.notify(
                "Select a files backup (or a full one) to compare its snapshot with another.",
                severity="warning",
            )
            return
        from jarvis_tui.screens.snapshot_diff import SnapshotDiffScreen

        self.app.push_screen(SnapshotDiffScreen(detail.backup_set.id))

    def action_sync(self) -> None:
        """Every copy destination brought up to the repository: not one set, all of them."""
        if self.console.runner.sync(self.app):
            self.notify("Syncing copies…", timeout=3)
        else:
            self.notify(NO_COPY_DESTINATION, severity="warning", timeout=8)

    def action_delete(self) -> None:
        current = self._selected()
        if current is not None:
            self.check_deletion(current)

    @work(thread=True, exclusive=True, exit_on_error=False, group="catalog-delete")
    def check_deletion(self, backup_set: BackupSet) -> None:
        """Which sources would lose their newest good backup: said before the typed name."""
        try:
            newest = self.console.access.catalog().newest_restorable_backups()
        except Exception:
            newest = {}
        sources = sorted(s for s, set_id in newest.items() if set_id == backup_set.id)
        self.post_message(DeletionChecked(backup_set, sources))

    def on_deletion_checked(self, message: DeletionChecked) -> None:
        set_id = message.backup_set.id
        consequence = (
            "Its artifacts and sidecars are removed from every destination and the catalog "
            "forgets it. This cannot be undone."
        )
        if message.newest_of:
            consequence += (
                f"\nIt is the newest good backup of {', '.join(message.newest_of)}: after this, "
                "an older one (or none) is what a restore can use."
            )
        screen = TypedConfirmScreen(f"Delete {set_id}?", consequence, set_id, "Delete")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.console.runner.delete(set_id, self.app)
                self.notify(f"Deleting {set_id}…", timeout=3)

        self.app.push_screen(screen, confirmed)
