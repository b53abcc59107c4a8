"""Turning what an operator types (an id, `latest`, a path) into artifacts on disk."""

from dataclasses import dataclass
from pathlib import Path

from engines.catalog import Artifact
from engines.errors import NotFoundError
from engines.workspace import Workspace


@dataclass(frozen=True)
class ResolvedArtifact:
    path: Path
    artifact: Artifact | None  # None for a file the catalog does not know (e.g. downloaded)

    @property
    def label(self) -> str:
        return self.artifact.relpath if self.artifact else str(self.path)


def resolve_artifacts(
    workspace: Workspace, reference: str, kind: str | None = None
) -> list[ResolvedArtifact]:
    """`reference` is a backup set id, `latest`, a repository-relative key or a file path."""
    candidate = Path(reference).expanduser()
    if candidate.is_file():
        return [_from_path(workspace, candidate.resolve())]
    if "/" in reference:
        in_repository = workspace.repository.path_for(reference)
        if in_repository.is_file():
            return [_from_path(workspace, in_repository)]
        raise NotFoundError(
            f"{reference}: no such artifact file; give a backup id from `jarvis-tui list`, "
            "`latest`, or the path of an artifact file"
        )
    backup_set = workspace.catalog.get_backup_set(reference, kind)
    artifacts = [a for a in workspace.catalog.artifacts_of(backup_set.id) if a.status == "complete"]
    if not artifacts:
        raise NotFoundError(f"backup {backup_set.id} has no complete artifacts")
    return [ResolvedArtifact(workspace.repository.path_for(a.relpath), a) for a in artifacts]


def _from_path(workspace: Workspace, path: Path) -> ResolvedArtifact:
    root = workspace.repository.root.resolve()
    if path.is_relative_to(root):
        known = workspace.catalog.find_artifact_by_relpath(path.relative_to(root).as_posix())
        return ResolvedArtifact(path, known)
    return ResolvedArtifact(path, None)
