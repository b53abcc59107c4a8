"""`jarvis-tui export files SNAPSHOT --tar OUT`: a files snapshot as a standard tarball."""

from pathlib import Path

from engines.actions.decrypt import check_outside
from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.store.export import ExportReport, export_tar
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> ExportReport:
    """The `export-files` verb: snapshot `request.reference` into the tarball `request.output`."""
    assert request.output is not None
    check_outside(Path(request.output), workspace.local_root)
    return export_tar(workspace, str(request.reference), request.output, context)
