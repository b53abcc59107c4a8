"""The restore drill (`--verify-restore`, VERIFY_RESTORE=true): restore a fresh backup into
a scratch database, compare it with the metadata, drop it, record the result."""

from engines.catalog import Artifact
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.postgres import databases
from engines.postgres.connection import target_from_settings
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
