"""The `pitr-check` verb (`pitr check`): a forced segment switch whose segment must reach
the archive within BACKUP_WAL_PUSH_TIMEOUT (pgBackRest's `check`)."""

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.pitr.setup import CheckResult, check_archiving
from engines.postgres.connection import connect_maintenance, target_from_settings
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext | None) -> CheckResult:
    settings = workspace.settings
    with connect_maintenance(target_from_settings(settings)) as conn:
        return check_archiving(conn, workspace.repository, settings.backup_wal_push_timeout)
