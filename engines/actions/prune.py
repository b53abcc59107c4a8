"""`jarvis-tui prune`: remove file data no snapshot references.

The files store's `prune_store` holds the repository lock and refuses while a
job reads packs; it deletes only what it proves unreferenced. Cleanup prunes too,
through each source's own prune.
"""

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.store.prune import PruneReport, prune_store
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> PruneReport:
    """The `prune` verb; with `request.dry_run` it reports and changes nothing."""
    return prune_store(workspace, context, dry_run=request.dry_run)
