"""`jarvis-tui diff SNAP_A SNAP_B`: the paths added, removed and changed between two
files snapshots. A read: no job, no lock."""

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.store.diff import SnapshotDiff, diff_snapshots
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext | None) -> SnapshotDiff:
    """The `diff` verb: from snapshot `request.reference` to `request.second_reference`."""
    return diff_snapshots(workspace, str(request.reference), str(request.second_reference))
