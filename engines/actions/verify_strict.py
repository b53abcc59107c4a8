"""The `verify-strict` verb: `verify` whose job fails when an artifact fails its check.

The CLI's `verify` lists every artifact as ok or FAILED and sets its exit code; its job
ends `succeeded` either way, since the listing is its answer. A client that starts a
verification and only polls the job (the API) has the job's status and error as its
whole answer, so here a damaged artifact fails the job, named in its error.
"""

from engines.actions.verbs import Request
from engines.actions.verify import verify_backup
from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> list[str]:
    """The artifacts checked, by label; IntegrityError naming the first problem."""
    results = verify_backup(workspace, str(request.reference), context, read_data=request.read_data)
    failed = [result for result in results if not result.report.ok]
    if failed:
        first = failed[0]
        raise IntegrityError(
            f"{len(failed)} of {len(results)} artifact(s) failed verification: "
            f"{first.target.label}: {first.report.problems[0]}; make a new backup and keep "
            "the failed one for investigation"
        )
    return [result.target.label for result in results]
