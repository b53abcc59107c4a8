"""How the console tells the operator that an action it started ended (toasts)."""

from textual import on
from textual.app import App

from jarvis_tui.messages import (
    BackupFailed,
    BackupFinished,
    CatalogChanged,
    DeleteFailed,
    ExportFailed,
    ExportFinished,
    KeyRotated,
    MaintenanceFailed,
    MaintenanceFinished,
    RekeyFailed,
    SetDeleted,
    SyncFailed,
    SyncFinished,
    VerifyFailed,
    VerifyFinished,
)

LONG = 15


class OutcomeNotifications(App):
    """Mixed into the console app: one handler per finished or failed action."""

    @on(BackupFinished)
    def _backup_finished(self, message: BackupFinished) -> None:
        backup_set = message.backup_set
        severity = "information" if backup_set.status == "complete" else "warning"
        self.notify(
            f"{backup_set.id} {backup_set.status}", title="Backup finished", severity=severity
        )
        self.post_message(CatalogChanged("backup finished"))

    @on(BackupFailed)
    def _backup_failed(self, message: BackupFailed) -> None:
        if message.cancelled:
            self.notify(
                "Earlier backups are as they were.",
                title=f"{message.kind} backup cancelled",
                severity="warning",
            )
            return
        self.notify(
            message.error, title=f"{message.kind} backup failed", severity="error", timeout=LONG
        )

    @on(VerifyFinished)
    def _verify_finished(self, message: VerifyFinished) -> None:
        if message.problems:
            self.notify(
                "\n".join(message.problems[:3]),
                title=f"{message.set_id} FAILED verification",
                severity="error",
                timeout=LONG,
            )
        else:
            self.notify(f"{message.set_id}: every artifact authenticated", title="Verified")

    @on(VerifyFailed)
    def _verify_failed(self, message: VerifyFailed) -> None:
        self.notify(
            message.error,
            title=f"Could not verify {message.set_id}",
            severity="error",
            timeout=LONG,
        )

    @on(ExportFinished)
    def _export_finished(self, message: ExportFinished) -> None:
        self.notify("\n".join(str(p) for p in message.paths), title="Exported", timeout=LONG)

    @on(ExportFailed)
    def _export_failed(self, message: ExportFailed) -> None:
        self.notify(message.error, title="Export failed", severity="error", timeout=LONG)

    @on(SetDeleted)
    def _set_deleted(self, message: SetDeleted) -> None:
        self.notify(f"{message.set_id} deleted", title="Deleted")
        self.post_message(CatalogChanged("deleted"))

    @on(DeleteFailed)
    def _delete_failed(self, message: DeleteFailed) -> None:
        self.notify(
            message.error, title=f"{message.set_id} not deleted", severity="error", timeout=LONG
        )

    @on(SyncFinished)
    def _sync_finished(self, message: SyncFinished) -> None:
        if message.failed:
            self.notify(
                "\n".join(message.lines)
                + "\nThe local backups are intact; sync again once the destination is reachable.",
                title="Sync failed",
                severity="error",
                timeout=LONG,
            )
        else:
            self.notify("\n".join(message.lines), title="Synced", timeout=LONG)

    @on(SyncFailed)
    def _sync_failed(self, message: SyncFailed) -> None:
        self.notify(message.error, title="Sync failed", severity="error", timeout=LONG)

    @on(MaintenanceFinished)
    def _maintenance_finished(self, message: MaintenanceFinished) -> None:
        shown = "\n".join(message.lines[:6])
        if message.failed:
            self.notify(shown, title=f"{message.title}: problems", severity="error", timeout=LONG)
        else:
            self.notify(shown, title=f"{message.title} finished", timeout=LONG)

    @on(MaintenanceFailed)
    def _maintenance_failed(self, message: MaintenanceFailed) -> None:
        if message.cancelled:
            self.notify(f"{message.title} cancelled", severity="warning")
            return
        self.notify(message.error, title=f"{message.title} failed", severity="error", timeout=LONG)

    @on(KeyRotated)
    def _rekey_finished(self, message: KeyRotated) -> None:
        report = message.report
        lines = [f"{len(report.rekeyed)} file(s) sealed again under key {report.current_key_id}."]
        if report.remaining:
            lines.append(
                f"{len(report.remaining)} stored object(s) made before (files snapshots, "
                "archived WAL) still need the old key: keep it in "
                "BACKUP_ENCRYPTION_KEY_PREVIOUS until those snapshots are pruned and a "
                "rekey has sealed that WAL again."
            )
        else:
            lines.append(
                "Nothing needs the old key any more: it can be removed from "
                "BACKUP_ENCRYPTION_KEY_PREVIOUS (keep a copy off this host)."
            )
        lines += report.problems  # a destination that kept archived WAL from being sealed again
        severity = "warning" if report.problems else "information"
        self.notify("\n".join(lines), title="Key rotated", severity=severity, timeout=LONG)

    @on(RekeyFailed)
    def _rekey_failed(self, message: RekeyFailed) -> None:
        self.notify(
            f"{message.error}\nThe new key is in use and the old one kept: earlier backups "
            "still decrypt. To finish, k then Seal again only (no other new key) once the "
            "repository is free; the job's log is in Jobs (3).",
            title="Sealing again under the new key stopped",
            severity="warning" if message.cancelled else "error",
            timeout=LONG,
        )
