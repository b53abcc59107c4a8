"""Which snapshot an operator means: set id, `latest`, a day (`files_2025-10-17`), a file."""

import re

from engines.errors import JarvisError, NotFoundError
from engines.resolve import ResolvedArtifact, resolve_artifacts
from engines.store.layout import SOURCE, is_snapshot_key
from engines.workspace import Workspace

_DAY = re.compile(r"(?:files_)?(\d{4}-\d{2}-\d{2})")


def snapshot_reference(workspace: Workspace, reference: str) -> str:
    """A day (`files_2025-10-17` or `2025-10-17`) becomes that day's newest complete snapshot."""
    day = _DAY.fullmatch(reference)
    if day is None:
        return reference
    prefix = f"{SOURCE}_{day.group(1)}_"
    for backup_set in workspace.catalog.list_backup_sets(kind=SOURCE):
        if backup_set.status == "complete" and backup_set.id.startswith(prefix):
            return backup_set.id
    raise NotFoundError(
        f"no complete files snapshot from {day.group(1)}; run `jarvis-tui list --kind files`"
    )


def pick_manifest(artifacts: list[ResolvedArtifact]) -> ResolvedArtifact:
    for artifact in artifacts:
        name = artifact.artifact.relpath if artifact.artifact else f"{SOURCE}/{artifact.path.name}"
        if is_snapshot_key(name):
            return artifact
    labels = ", ".join(a.label for a in artifacts)
    raise JarvisError(f"{labels}: not a files snapshot manifest")


def resolve_snapshot(workspace: Workspace, reference: str) -> ResolvedArtifact:
    return pick_manifest(
        resolve_artifacts(workspace, snapshot_reference(workspace, reference), SOURCE)
    )
