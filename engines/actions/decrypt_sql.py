"""`jarvis-tui decrypt --sql`: a PostgreSQL artifact as a plain `.sql.gz`, for
`gunzip -c | grep` (the PostgreSQL package writes it)."""

from pathlib import Path

from engines.actions.decrypt import check_outside
from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.postgres.plain_sql import decrypt_to_sql
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> Path:
    """The `decrypt-sql` verb: artifact `request.reference` as SQL at `request.output`."""
    assert request.output is not None
    check_outside(Path(request.output), workspace.local_root)
    return decrypt_to_sql(workspace, str(request.reference), request.output, context)
