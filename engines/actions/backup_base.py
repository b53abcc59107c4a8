"""The scheduled PostgreSQL base backup (verb `backup-base`): taken after a scheduled
backup when BACKUP_PITR_BASE_SCHEDULE covers its tier and the server archives into this
repository through wal-push (engines/pitr/archiving.py). A set of its own, so retention
keeps base backups in their own slots and prunes the WAL before the oldest kept one."""

from engines.actions.backup import run_backup
from engines.actions.verbs import Request
from engines.catalog import BackupSet
from engines.catalog.rows import BASE_MODE
from engines.jobs import JobContext
from engines.pitr.archiving import why_not_archiving_here
from engines.postgres.connection import connect, target_from_settings
from engines.postgres.options import PostgresBackupOptions
from engines.sources import get_source
from engines.sources.postgres import server_errors_explained
from engines.workspace import Workspace

SOURCE = "postgres"


def run(workspace: Workspace, request: Request, context: JobContext) -> BackupSet | None:
    """The base backup's set; None (said in the job's log) when none is due here."""
    reason = get_source(SOURCE).configured(workspace.settings)
    if reason is None:
        with server_errors_explained(), connect(target_from_settings(workspace.settings)) as conn:
            reason = why_not_archiving_here(conn, workspace.repository, workspace.keyring())
    if reason is not None:
        context.log(f"no PostgreSQL base backup with this scheduled backup: {reason}")
        return None
    context.log("the server archives through wal-push: taking a base backup as well")
    return run_backup(
        workspace,
        SOURCE,
        PostgresBackupOptions(mode=BASE_MODE),
        context,
        tier=request.tier,
        dispatcher=request.dispatcher,
        created_at=request.created_at,
    )
