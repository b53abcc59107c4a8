"""`jarvis-tui catalog rebuild`: the catalog is a cache of the repository's sidecars."""

from dataclasses import dataclass, field

from engines.artifacts import read_sidecar
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.workspace import Workspace

SIDECAR_SUFFIX = ".metadata.json"


@dataclass
class RebuildReport:
    imported: int = 0
    skipped: list[str] = field(default_factory=list)


def rebuild_catalog(workspace: Workspace, context: JobContext) -> RebuildReport:
    report = RebuildReport()
    root = workspace.repository.root
    for sidecar in sorted(root.rglob(f"*{SIDECAR_SUFFIX}")):
        context.raise_if_cancelled()
        artifact = sidecar.with_name(sidecar.name.removesuffix(SIDECAR_SUFFIX))
        relpath = artifact.relative_to(root).as_posix()
        if not artifact.is_file():
            report.skipped.append(f"{relpath}: sidecar without its artifact")
            continue
        try:
            workspace.catalog.import_sidecar(relpath, read_sidecar(sidecar))
        except (JarvisError, KeyError, ValueError) as exc:
            report.skipped.append(f"{relpath}: unreadable sidecar ({exc})")
            continue
        report.imported += 1
    for problem in report.skipped:
        context.log(problem, level="warning")
    context.log(
        f"catalog rebuilt: {report.imported} artifacts imported, {len(report.skipped)} skipped"
    )
    return report
