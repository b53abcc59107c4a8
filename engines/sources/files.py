"""User files as a source: deduplicated snapshots in the files store (`engines/store/`)."""

from pathlib import Path
from typing import Any

from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.jobs import JobContext
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.sources.base import RestoreReport, Source
from engines.sources.missing_paths import alert_missing_paths, missing_line
from engines.sources.restore_drills import compare_files, drill_files
from engines.store.backup import FilesBackupOptions, back_up_files
from engines.store.layout import is_snapshot_key
from engines.store.prune import prune_store
from engines.store.resolve import pick_manifest
from engines.store.restore import FilesRestoreOptions, restore_files
from engines.workspace import Workspace


class FilesSource(Source):
    kind = "files"

    def configured(self, settings: Settings) -> str | None:
        if settings.file_paths:
            return None
        return "BACKUP_FILE_PATHS is empty; list the folders to back up, comma-separated"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        artifacts = back_up_files(workspace, backup_set, options or FilesBackupOptions(), context)
        missing = _summary(artifacts).get("missing", [])
        alert_missing_paths(workspace, backup_set.id, "files", "BACKUP_FILE_PATHS", missing)
        return artifacts

    def left_out(self, artifacts: list[Artifact]) -> list[str]:
        """What the snapshot lacks that `backup files` fails for (exit 1)."""
        summary = _summary(artifacts)
        lines = [missing_line("BACKUP_FILE_PATHS", path) for path in summary.get("missing", [])]
        if summary.get("unreadable"):
            lines.append(f"{summary['unreadable']} file(s) or folder(s) could not be read")
        return lines

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        return restore_files(workspace, artifacts, options or FilesRestoreOptions(), context)

    def full_restore_options(
        self, artifacts: list[Artifact], dry_run: bool
    ) -> list[FilesRestoreOptions]:
        """Back to where they were, each file as the snapshot holds it (newer ones too)."""
        return [FilesRestoreOptions(overwrite="always", dry_run=dry_run)]

    def check_restored(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        report: RestoreReport,
        context: JobContext,
    ) -> str:
        return compare_files(workspace, pick_manifest(artifacts), Path(report.target), context)

    def prune(self, workspace: Workspace, context: JobContext) -> str:
        """Remove data no snapshot references (cleanup calls this after retention)."""
        context.log("pruning the files store")
        return str(prune_store(workspace, context))

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill: the snapshot restored into a scratch folder and every
        file compared with it."""
        if not is_snapshot_key(artifact.relpath):
            return None
        return drill_files(workspace, resolved_from_catalog(workspace, artifact), context)


def _summary(artifacts: list[Artifact]) -> dict[str, Any]:
    return artifacts[0].metadata.get("snapshot", {}) if artifacts else {}


SOURCE = FilesSource()
