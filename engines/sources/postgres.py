"""PostgreSQL as a source: the shared face over `engines/postgres/`."""

from typing import Any

from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.jobs import JobContext
from engines.postgres.backup import back_up_postgres
from engines.postgres.options import PostgresBackupOptions, PostgresRestoreOptions
from engines.postgres.restore_flow import restore_postgres
from engines.resolve import ResolvedArtifact
from engines.sources.base import RestoreReport
from engines.workspace import Workspace


class PostgresSource:
    kind = "postgres"

    def configured(self, settings: Settings) -> str | None:
        if settings.postgres_configured:
            return None
        return "PostgreSQL is not configured; set DATABASE_URL or POSTGRES_HOST/USER/DB"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        return back_up_postgres(workspace, backup_set, options or PostgresBackupOptions(), context)

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        return restore_postgres(workspace, artifacts, options or PostgresRestoreOptions(), context)


SOURCE = PostgresSource()
