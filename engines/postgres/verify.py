"""The restore drill (`--verify-restore`, VERIFY_RESTORE=true): restore a fresh backup into
a scratch database, compare it with the metadata, drop it, record the result."""

from typing import Any

from engines.catalog import Artifact
from engines.config import Settings
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.postgres import databases
from engines.postgres.connection import connect, target_from_settings
from engines.postgres.inspect import TableInfo, compare_tables, describe_contents
from engines.postgres.options import PostgresRestoreOptions
from engines.postgres.privileges import leave_out_missing_roles
from engines.postgres.session import open_restore_job
from engines.postgres.swap import restore_into_scratch
from engines.repository.resolve import resolved_from_catalog
from engines.workspace import Workspace


def verify_by_restore(workspace: Workspace, artifact: Artifact, context: JobContext) -> None:
    """Record the drill's result on the artifact; raise IntegrityError when it failed
    (alerting is the caller's: the backup's --verify-restore, or the scheduled drill)."""
    resolved = resolved_from_catalog(workspace, artifact)
    server = target_from_settings(workspace.settings, artifact.metadata.get("database"))
    context.log(f"restore drill of {artifact.relpath}")
    try:
        with open_restore_job(
            workspace, resolved, server, PostgresRestoreOptions(), context
        ) as job:
            if left_out := leave_out_missing_roles(job):
                context.log(left_out, "warning")
            scratch = restore_into_scratch(job, "verify")
            databases.drop_database(job.admin, scratch)
    except JarvisError as error:
        detail = f"restore drill failed: {error}"
        workspace.catalog.record_verification(artifact.id, False, detail)
        raise IntegrityError(f"{artifact.relpath}: {detail}") from error
    tables = artifact.metadata.get("table_count")
    detail = f"restore drill passed: {tables} tables and their row counts match"
    workspace.catalog.record_verification(artifact.id, True, detail)
    context.log(detail)


def compare_restored_database(settings: Settings, metadata: dict[str, Any]) -> str:
    """After a whole-database restore (`restore full`): the target, as `restore postgres`
    names it, counted now and compared with the dump's metadata (tables, row counts)."""
    name = settings.postgres_db or metadata.get("database") or "postgres"
    server = target_from_settings(settings, name)
    with connect(server, name) as conn:
        actual = describe_contents(conn)
    expected = [TableInfo.from_metadata(t) for t in metadata.get("tables", [])]
    counted = metadata.get("mode", "full") != "schema"
    comparison = compare_tables(expected, actual.tables, check_counts=counted)
    if not comparison.ok:
        raise IntegrityError(
            f"{server.describe()} differs from the backup: " + "; ".join(comparison.problems())
        )
    rows = sum(t.rows or 0 for t in expected)
    counts = f" and {rows} rows" if counted else ""
    return f"{server.describe()}: {len(expected)} tables{counts} match the backup"
