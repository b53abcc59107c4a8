"""Which snapshot an operator means: set id, `latest`, a day (`files_2025-10-17`), a file.

A files snapshot lives in a set of kind `files`, or in a `full` set beside the
other sources' artifacts; either way the manifest is an artifact of source
`files`, so references are turned into that artifact's repository key.
"""

import re

from engines.catalog import Artifact, BackupSet
from engines.errors import JarvisError, NotFoundError
from engines.repository.resolve import ResolvedArtifact, resolve_artifacts
from engines.store.layout import SOURCE, is_snapshot_key
from engines.workspace import Workspace

_DAY = re.compile(r"(?:files_)?(\d{4}-\d{2}-\d{2})")
_USABLE = ("complete", "partial")  # a partial full backup may hold a complete files part
_LIST_HINT = "run `jarvis-tui list` to see the backups"


def snapshot_of(workspace: Workspace, backup_set: BackupSet) -> Artifact | None:
    for artifact in workspace.catalog.artifacts_of(backup_set.id):
        if artifact.status == "complete" and is_snapshot_key(artifact.relpath):
            return artifact
    return None


def newest_snapshot(workspace: Workspace, day: str | None = None) -> Artifact | None:
    """The newest complete snapshot manifest (of that UTC day), in a files or full set."""
    for backup_set in workspace.catalog.list_backup_sets():
        if backup_set.status not in _USABLE:
            continue
        if day is not None and f"{backup_set.created_at:%Y-%m-%d}" != day:
            continue
        found = snapshot_of(workspace, backup_set)
        if found is not None:
            return found
    return None


def snapshot_reference(workspace: Workspace, reference: str) -> str:
    """`latest`, a day or a set id becomes the repository key of that snapshot's manifest;
    anything else (a key, a file) is left as it is."""
    if reference == "latest":
        found = newest_snapshot(workspace)
        if found is None:
            raise NotFoundError(f"there is no complete files snapshot yet; {_LIST_HINT}")
        return found.relpath
    day = _DAY.fullmatch(reference)
    if day is not None:
        found = newest_snapshot(workspace, day.group(1))
        if found is None:
            raise NotFoundError(f"no complete files snapshot from {day.group(1)}; {_LIST_HINT}")
        return found.relpath
    if "/" not in reference:
        try:
            backup_set = workspace.catalog.get_backup_set(reference)
        except NotFoundError:
            return reference
        found = snapshot_of(workspace, backup_set)
        if found is None:
            raise NotFoundError(f"backup {reference} holds no files snapshot; {_LIST_HINT}")
        return found.relpath
    return reference


def stored_name(artifact: ResolvedArtifact) -> str:
    """The repository key the artifact has or would have (`files/<name>` for a file picked
    by hand), which says whether it is a snapshot manifest."""
    if artifact.artifact is not None:
        return artifact.artifact.relpath
    if artifact.file is not None:
        return f"{SOURCE}/{artifact.file.name}"
    return artifact.stored.name  # a key of the repository the catalog does not know


def pick_manifest(artifacts: list[ResolvedArtifact]) -> ResolvedArtifact:
    for artifact in artifacts:
        if is_snapshot_key(stored_name(artifact)):
            return artifact
    labels = ", ".join(a.label for a in artifacts)
    raise JarvisError(f"{labels}: not a files snapshot manifest")


def resolve_snapshot(workspace: Workspace, reference: str) -> ResolvedArtifact:
    return pick_manifest(
        resolve_artifacts(workspace, snapshot_reference(workspace, reference), SOURCE)
    )
