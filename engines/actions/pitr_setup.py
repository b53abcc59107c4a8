"""The `pitr-setup` verb (`pitr setup [--apply]`): the archive settings for the server,
written through ALTER SYSTEM unless it is a dry run. `request.reference` is the
archive_command (the command line knows its own executable and env file)."""

from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.pitr.setup import apply_settings, archive_settings
from engines.postgres.connection import connect_maintenance, target_from_settings
from engines.workspace import Workspace


@dataclass(frozen=True)
class SetupReport:
    settings: dict[str, str]
    applied: bool
    restart_needed: list[str]


def run(workspace: Workspace, request: Request, context: JobContext | None) -> SetupReport:
    assert request.reference is not None
    wanted = archive_settings(request.reference, workspace.settings.backup_pitr_archive_timeout)
    if request.dry_run:
        return SetupReport(wanted, False, [])
    with connect_maintenance(target_from_settings(workspace.settings)) as conn:
        waiting = apply_settings(conn, wanted)
    return SetupReport(wanted, True, waiting)
