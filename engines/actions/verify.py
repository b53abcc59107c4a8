"""`jarvis-tui verify` (the guide's `backup:verify latest`)."""

from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.pipeline.artifacts import VerifyReport, verify_artifact
from engines.pitr.base_verify import with_base_backup_check
from engines.repository.resolve import ResolvedArtifact, read_from, resolve_artifacts
from engines.store.verify import with_snapshot_check
from engines.workspace import Workspace


@dataclass(frozen=True)
class ArtifactVerification:
    target: ResolvedArtifact
    report: VerifyReport


def verify_backup(
    workspace: Workspace, reference: str, context: JobContext, *, read_data: bool = False
) -> list[ArtifactVerification]:
    """Recompute each artifact's checksum and authenticate every chunk; record the result.

    A files snapshot is also checked for its chunks and packs; with `read_data`,
    every chunk it references is read and authenticated too.
    """
    keyring = workspace.keyring()
    results = []
    targets = resolve_artifacts(workspace, reference, check=False)
    total = sum(target.stored.size() for target in targets)
    checked = 0
    for target in targets:
        context.raise_if_cancelled()
        context.log(f"verifying {target.label}, reading it from {read_from(workspace, target)}")
        report = verify_artifact(target.stored, keyring, expected=target.expected)
        report = with_snapshot_check(workspace, target, report, context, read_data=read_data)
        report = with_base_backup_check(target, report, keyring, context, read_data=read_data)
        if target.artifact is not None:
            detail = (
                "; ".join(report.problems) or f"sha256 {report.checksum}, {report.chunks} chunks"
            )
            workspace.catalog.record_verification(target.artifact.id, report.ok, detail)
        for problem in report.problems:
            context.log(problem, level="error")
        if report.ok:
            context.log(f"{target.label}: ok ({report.chunks} chunks authenticated)")
        checked += target.stored.size()
        context.progress(checked, total)
        results.append(ArtifactVerification(target, report))
    return results


def run(workspace: Workspace, request: Request, context: JobContext) -> list[ArtifactVerification]:
    """The `verify` verb: `request.reference`'s artifacts checked end to end."""
    return verify_backup(workspace, str(request.reference), context, read_data=request.read_data)
