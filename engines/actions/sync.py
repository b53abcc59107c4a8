"""`jarvis-tui sync [--dry-run]`: every copy destination brought up to the repository.

For each destination one listing of each side says what is missing there (absent,
or of another size, as after a failed or interrupted copy); those objects are
pushed in the copy order of `engines/repository/copies.py`, and every artifact's
copy state is recorded. A dry run lists what would be pushed and changes nothing.
"""

from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.destinations import copy_destinations
from engines.jobs import JobContext
from engines.repository.copies import CopyOutcome, alert_copy_outcomes, copy_to_destinations
from engines.workspace import Workspace


@dataclass
class SyncReport:
    dry_run: bool
    outcomes: list[CopyOutcome]

    @property
    def failed(self) -> list[CopyOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


def run(workspace: Workspace, request: Request, context: JobContext) -> SyncReport:
    destinations = copy_destinations(workspace.settings)
    if not destinations:
        context.log("no copy destination is configured; nothing to sync")
        return SyncReport(request.dry_run, [])
    with workspace.lock("sync", reading_only=request.dry_run):
        outcomes = copy_to_destinations(workspace, context, destinations, dry_run=request.dry_run)
    alert_copy_outcomes(workspace, outcomes, request.dispatcher)
    return SyncReport(request.dry_run, outcomes)
