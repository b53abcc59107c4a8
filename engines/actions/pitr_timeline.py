"""The `pitr-timeline` verb (`pitr timeline`): per cluster and timeline, the window a
point-in-time restore can reach, its gaps and the base backups each range needs."""

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.pitr.timeline import TimelineReport, recoverable_timeline
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext | None) -> TimelineReport:
    repository = workspace.repository
    return recoverable_timeline(
        workspace.catalog, repository, workspace.keyring(), repository.repository_id() or ""
    )
