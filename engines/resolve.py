"""Turning what an operator types (an id, `latest`, a path) into artifacts on disk."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.artifacts import read_sealed_metadata, read_sidecar, sidecar_path_for
from engines.catalog import Artifact
from engines.errors import JarvisError, NotFoundError
from engines.workspace import Workspace


@dataclass(frozen=True)
class ResolvedArtifact:
    path: Path
    artifact: Artifact | None  # None for a file the catalog does not know (e.g. downloaded)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.artifact.relpath if self.artifact else str(self.path)

    @property
    def source(self) -> str | None:
        return self.metadata.get("source")


def resolve_artifacts(
    workspace: Workspace, reference: str, kind: str | None = None
) -> list[ResolvedArtifact]:
    """`reference` is a backup set id, `latest`, a repository-relative key or a file path.

    With `kind`, `latest` means the newest complete backup holding that source, and an
    artifact of another source is refused before anything else happens.
    """
    candidate = Path(reference).expanduser()
    if candidate.is_file():
        found = [_from_path(workspace, candidate.resolve())]
    elif "/" in reference:
        in_repository = _repository_file(workspace, reference)
        if in_repository is None:
            raise NotFoundError(
                f"{reference}: no such artifact file; give a backup id from `jarvis-tui list`, "
                "`latest`, or the path of an artifact file"
            )
        found = [_from_path(workspace, in_repository)]
    else:
        backup_set = workspace.catalog.get_backup_set(reference, kind)
        found = [
            ResolvedArtifact(workspace.repository.path_for(a.relpath), a, _known_metadata(a))
            for a in workspace.catalog.artifacts_of(backup_set.id)
            if a.status == "complete" and (kind is None or a.source == kind)
        ]
        if not found:
            what = f"{kind} artifacts" if kind else "complete artifacts"
            raise NotFoundError(f"backup {backup_set.id} has no {what}")
    if kind is not None:
        for item in found:
            if item.source != kind:
                raise JarvisError(
                    f"{item.label} is a {item.source or 'unknown'} artifact, not {kind}; "
                    f"use `jarvis-tui restore {item.source}` or pick a {kind} backup "
                    "from `jarvis-tui list`"
                )
    return found


def _repository_file(workspace: Workspace, key: str) -> Path | None:
    """The artifact file under repository key `key`, or None (also for a key that is
    not a repository key at all, such as a missing absolute path)."""
    try:
        path = workspace.repository.path_for(key)
    except ValueError:
        return None
    return path if path.is_file() else None


def _known_metadata(artifact: Artifact) -> dict[str, Any]:
    # A catalog rebuilt from sidecars keeps source and mode in columns, not in the metadata.
    return {"source": artifact.source, "mode": artifact.mode, **artifact.metadata}


def _from_path(workspace: Workspace, path: Path) -> ResolvedArtifact:
    root = workspace.repository.root.resolve()
    if path.is_relative_to(root):
        known = workspace.catalog.find_artifact_by_relpath(path.relative_to(root).as_posix())
        if known is not None:
            return ResolvedArtifact(path, known, _known_metadata(known))
    sidecar = sidecar_path_for(path)
    if sidecar.is_file():
        return ResolvedArtifact(path, None, read_sidecar(sidecar))
    return ResolvedArtifact(path, None, read_sealed_metadata(path, workspace.keyring()))
