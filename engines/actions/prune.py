"""`jarvis-tui prune`: remove file data no snapshot references.

The files store's `prune_store` holds the repository lock and refuses while a
job reads packs; it deletes only what it proves unreferenced. Then every copy
destination is pruned of what no snapshot stored there references, each S3
prefix under its lock (`prune_copies`). Cleanup prunes both too.
"""

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.store.prune import PruneReport, prune_store
from engines.store.prune_copies import Foreseen, prune_copies
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> PruneReport:
    """The `prune` verb; with `request.dry_run` it reports and changes nothing."""
    report = prune_store(workspace, context, dry_run=request.dry_run)
    foreseen = Foreseen(report.replaced, report.referenced) if request.dry_run else None
    report.copies = prune_copies(workspace, context, dry_run=request.dry_run, foreseen=foreseen)
    return report
