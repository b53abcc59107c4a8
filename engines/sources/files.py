"""User files as a source: deduplicated snapshots in the files store (`engines/store/`)."""

from typing import Any

from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.jobs import JobContext
from engines.resolve import ResolvedArtifact
from engines.sources.base import RestoreReport
from engines.store.backup import FilesBackupOptions, back_up_files
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
        return back_up_files(workspace, backup_set, options or FilesBackupOptions(), context)

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


SOURCE = FilesSource()
