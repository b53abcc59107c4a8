"""PostgreSQL as a source: the shared face over `engines/postgres/`."""

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg

from engines.catalog import Artifact, BackupSet
from engines.catalog.rows import BASE_MODE
from engines.config import Settings
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.pitr.base_backup import back_up_base
from engines.pitr.base_choice import newest_postgres
from engines.pitr.base_restore import (
    drill_new_base_backup,
    is_base,
    lay_out_in_scratch,
    restore_base_set,
)
from engines.pitr.restore_pitr import base_for_target, restore_to_target
from engines.pitr.target_timeline import base_on_timeline
from engines.postgres.backup import back_up_postgres
from engines.postgres.options import PostgresBackupOptions, PostgresRestoreOptions
from engines.postgres.restore import restore_postgres
from engines.postgres.verify import compare_restored_database, verify_by_restore
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.sources.base import RestoreReport, Source
from engines.workspace import Workspace


class PostgresSource(Source):
    kind = "postgres"

    def configured(self, settings: Settings) -> str | None:
        if settings.postgres_configured:
            return None
        return "PostgreSQL is not configured; set DATABASE_URL or POSTGRES_HOST/USER/DB"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        if options is not None and options.mode == BASE_MODE:
            with server_errors_explained():
                artifact = back_up_base(workspace, backup_set, options.database, context)
            if options.drill_after(workspace.settings.verify_restore):
                try:
                    drill_new_base_backup(workspace, artifact, context)
                except IntegrityError as error:
                    workspace.catalog.record_alert("critical", "verification", str(error))
                    raise
            return [artifact]
        with server_errors_explained():
            return back_up_postgres(
                workspace, backup_set, options or PostgresBackupOptions(), context
            )

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        options = options or PostgresRestoreOptions()
        if options.pitr is not None:
            return restore_to_target(
                workspace,
                artifacts,
                options.pgdata,
                options.pitr,
                options.dry_run,
                context,
                start=options.start,
            )
        if options.pgdata is not None or any(map(is_base, artifacts)):
            return restore_base_set(workspace, artifacts, options.pgdata, options.dry_run, context)
        with server_errors_explained():
            return restore_postgres(workspace, artifacts, options, context)

    def newest_for_restore(self, workspace: Workspace, options: Any) -> BackupSet:
        """A dump for a restore into a database; with --pgdata, a base backup; with a
        point-in-time target, the newest base backup that ended before it."""
        if options is not None and options.pitr is not None:
            on_timeline = base_on_timeline(workspace, options.pitr)
            return base_for_target(workspace.catalog, options.pitr, on_timeline)
        wants_folder = options is not None and options.pgdata is not None
        return newest_postgres(workspace.catalog, base=wants_folder)

    def full_restore_options(
        self, artifacts: list[Artifact], dry_run: bool
    ) -> list[PostgresRestoreOptions]:
        """The guide's `--drop-existing`, with the set's roles: the dump is restored into a
        scratch database, checked and swapped in; the previous database is kept."""
        with_globals = any(a.mode == "globals" for a in artifacts)
        return [
            PostgresRestoreOptions(dry_run=dry_run, drop_existing=True, with_globals=with_globals)
        ]

    def check_restored(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        report: RestoreReport,
        context: JobContext,
    ) -> str | None:
        dumps = [a for a in artifacts if a.metadata.get("mode") != "globals"]
        if not dumps:
            return None
        with server_errors_explained():
            return compare_restored_database(workspace.settings, dumps[0].metadata)

    def reachable(self, settings: Settings) -> str:
        from engines.postgres.connection import connect, target_from_settings

        target = target_from_settings(settings)
        with connect(target) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"{target.describe()}: PostgreSQL {version}"

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill: a full or schema dump restored into a scratch database
        and compared with its metadata, a base backup laid out into a scratch folder and
        checked against its manifest; None for artifacts without such a check (globals)."""
        if artifact.mode == BASE_MODE:
            return lay_out_in_scratch(
                workspace, resolved_from_catalog(workspace, artifact), context
            )
        if artifact.mode not in ("full", "schema"):
            return None
        with server_errors_explained():
            verify_by_restore(workspace, artifact, context)
        tables = artifact.metadata.get("table_count")
        return f"restored into a scratch database: {tables} tables and their row counts match"


@contextlib.contextmanager
def server_errors_explained() -> Iterator[None]:
    """An SQL error we did not foresee (permissions, a full server disk) still reaches the
    operator as a message, not a traceback."""
    try:
        yield
    except psycopg.Error as error:
        detail = error.diag.message_primary or str(error).strip() or type(error).__name__
        raise JarvisError(f"PostgreSQL refused an operation: {detail}") from error


SOURCE = PostgresSource()
