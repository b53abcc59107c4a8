"""`jarvis-tui export files SNAPSHOT --tar OUT`: a files snapshot as a standard tarball."""

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.store.export import ExportReport, export_tar
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> ExportReport:
    """The `export-files` verb: snapshot `request.reference` into the tarball `request.output`."""
    assert request.output is not None
    return export_tar(workspace, str(request.reference), request.output, context)
