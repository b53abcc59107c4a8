"""User files as a source: deduplicated snapshots in the files store (`engines/store/`)."""

from typing import Any

from engines.alerts import AlertDispatcher
from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.jobs import JobContext
from engines.resolve import ResolvedArtifact, resolved_from_catalog
from engines.sources.base import RestoreReport
from engines.sources.restore_drills import drill_files
from engines.store.backup import FilesBackupOptions, back_up_files
from engines.store.layout import is_snapshot_key
from engines.store.prune import prune_store
from engines.store.restore import FilesRestoreOptions, restore_files
from engines.workspace import Workspace


class FilesSource:
    kind = "files"

    def configured(self, settings: Settings) -> str | None:
        if settings.file_paths:
            return None
        return "BACKUP_FILE_PATHS is empty; list the folders to back up, comma-separated"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        artifacts = back_up_files(workspace, backup_set, options or FilesBackupOptions(), context)
        missing = artifacts[0].metadata.get("snapshot", {}).get("missing", []) if artifacts else []
        _alert_missing_folders(workspace, backup_set.id, missing)
        return artifacts

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        return restore_files(workspace, artifacts, options or FilesRestoreOptions(), context)

    def prune(self, workspace: Workspace, context: JobContext) -> str:
        """Remove data no snapshot references (cleanup calls this after retention)."""
        return str(prune_store(workspace, context))

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill: the snapshot restored into a scratch folder and every
        file compared with it."""
        if not is_snapshot_key(artifact.relpath):
            return None
        return drill_files(workspace, resolved_from_catalog(workspace, artifact), context)


MISSING_FOLDERS = "backup_paths_missing:files"


def _alert_missing_folders(workspace: Workspace, set_id: str, missing: list[str]) -> None:
    """A configured folder that is gone (an unmounted disk, a typo) is data no longer
    protected: critical until a backup finds every folder again."""
    dispatcher = AlertDispatcher(workspace.catalog, workspace.settings)
    if missing:
        dispatcher.raise_condition(
            MISSING_FOLDERS,
            "critical",
            f"backup {set_id}: files: not backed up because they do not exist: "
            f"{', '.join(missing)}; create them or remove them from BACKUP_FILE_PATHS",
        )
    else:
        dispatcher.clear_condition(
            MISSING_FOLDERS, f"backup {set_id}: files: every folder of BACKUP_FILE_PATHS backed up"
        )


SOURCE = FilesSource()
