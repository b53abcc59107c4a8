"""Restoring: resolve what the operator named, then hand it to its source."""

from pathlib import Path
from typing import Any

from engines.actions.decrypt import check_outside
from engines.actions.verbs import Request
from engines.catalog import LATEST
from engines.jobs import JobContext
from engines.repository.resolve import log_copies_read, resolve_artifacts
from engines.sources import get_source
from engines.sources.base import RestoreReport
from engines.workspace import Workspace


def run_restore(
    workspace: Workspace, kind: str, reference: str, options: Any, context: JobContext
) -> RestoreReport:
    """`options.dry_run` flows through to the source: a dry run shares the real code path."""
    for place in ("target_dir", "to"):  # decrypted data never goes into the repository
        chosen = getattr(options, place, None)
        if chosen is not None:
            check_outside(Path(chosen), workspace.local_root)
    source = get_source(kind)
    if reference == LATEST:
        reference = source.newest_for_restore(workspace, options).id
    artifacts = resolve_artifacts(workspace, reference, kind)
    verb = "planning restore (dry run)" if getattr(options, "dry_run", False) else "restoring"
    context.log(f"{verb} of {kind} from {', '.join(a.label for a in artifacts)}")
    log_copies_read(workspace, artifacts, context)
    return source.restore(workspace, artifacts, options, context)


def run(workspace: Workspace, request: Request, context: JobContext) -> RestoreReport:
    """The `restore` verb: `request.reference` back into the `request.kind` source."""
    return run_restore(
        workspace, str(request.kind), str(request.reference), request.options, context
    )
