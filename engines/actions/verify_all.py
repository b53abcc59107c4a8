"""`jarvis-tui verify --all [--sample PERCENT] [--read-data]`: re-read stored data over time.

Each run takes the artifacts never verified first, then those verified longest
ago, so repeated sampled runs walk the whole repository; the catalog remembers
what was checked and when (`verified_at`). Every artifact is read whole; a files snapshot
also has its chunks located, and with `read_data` every chunk read and authenticated.
"""

import math
from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.actions.verify_drill import alert_verification
from engines.alerts import AlertDispatcher
from engines.catalog import Artifact
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.pipeline.artifacts import verify_artifact
from engines.repository.resolve import resolved_from_catalog
from engines.store.verify import with_snapshot_check
from engines.workspace import Workspace


@dataclass(frozen=True)
class StoredCheck:
    artifact: Artifact
    ok: bool
    problems: list[str]


def sample_size(total: int, percent: float) -> int:
    if not 0 < percent <= 100:
        raise JarvisError(f"--sample {percent:g}: give a percentage above 0 and at most 100")
    return min(total, math.ceil(total * percent / 100))


def verify_all(
    workspace: Workspace,
    context: JobContext,
    *,
    sample_percent: float = 100.0,
    read_data: bool = False,
    dispatcher: AlertDispatcher | None = None,
) -> list[StoredCheck]:
    catalog = workspace.catalog
    count = sample_size(catalog.count_complete_artifacts(), sample_percent)
    # A set whose deletion has begun is partly gone on purpose: nothing there to check.
    leaving = catalog.sets_being_deleted()
    chosen = [
        a for a in catalog.artifacts_least_recently_verified(count) if a.set_id not in leaving
    ]
    keyring = workspace.keyring()
    dispatcher = dispatcher or AlertDispatcher(catalog, workspace.settings)
    total_bytes = sum(a.stored_size or 0 for a in chosen)
    context.log(
        f"verifying {len(chosen)} artifact(s) ({sample_percent:g}% sample), least recent first"
        + (", reading every chunk of files snapshots" if read_data else "")
    )
    checks: list[StoredCheck] = []
    done = 0
    for artifact in chosen:
        context.raise_if_cancelled()
        try:
            # The best copy: a host rebuilt from S3 holds nothing here and is not damaged.
            if workspace.reader().stat(artifact.relpath) is None:
                copies = " and every copy" if workspace.reader() is not workspace.repository else ""
                problems = [f"{artifact.relpath} is missing from the repository{copies}"]
                detail = problems[0]
            else:
                resolved = resolved_from_catalog(workspace, artifact)
                report = verify_artifact(resolved.stored, keyring, expected=resolved.expected)
                report = with_snapshot_check(
                    workspace, resolved, report, context, read_data=read_data
                )
                problems = report.problems
                detail = "; ".join(problems) or f"sha256 {report.checksum}, {report.chunks} chunks"
        except JarvisError as error:
            problems = [str(error)]
            detail = problems[0]
        catalog.record_verification(artifact.id, not problems, detail)
        for problem in problems:
            context.log(f"{artifact.relpath}: {problem}", level="error")
        alert_verification(dispatcher, artifact.relpath, not problems, detail)
        checks.append(StoredCheck(artifact, not problems, problems))
        done += artifact.stored_size or 0
        context.progress(done, total_bytes)
    return checks


def run(workspace: Workspace, request: Request, context: JobContext) -> list[StoredCheck]:
    """The `verify-all` verb (`verify --all`): a share of the stored artifacts re-read."""
    return verify_all(
        workspace, context, sample_percent=request.sample_percent, read_data=request.read_data
    )
