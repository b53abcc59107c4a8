"""Turning what an operator types (an id, `latest`, a key, a path) into artifacts, each
read through the repository's destination (or, for a file picked by hand, from that file).

Each artifact found carries what it is expected to be (`Expected`: its
identity, and the key id, checksum and size the catalog recorded), which every
reader checks; `resolve_artifacts` also checks it up front, so a swapped or
re-sealed artifact is refused (exit 4, naming both) before anything changes.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.catalog import Artifact
from engines.destinations.best_copy import BestCopy
from engines.errors import IntegrityError, JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import (
    Expected,
    StoredBytes,
    artifact_identity,
    check_expected,
    describe_artifact,
    file_bytes,
)
from engines.repository.stored import stored_bytes
from engines.workspace import Workspace

logger = logging.getLogger("jarvis.reading")


@dataclass(frozen=True)
class ResolvedArtifact:
    # Its bytes: the destination's streams (given a path, that file's: one picked by hand).
    stored: StoredBytes
    artifact: Artifact | None  # None for a file the catalog does not know (e.g. downloaded)
    metadata: dict[str, Any] = field(default_factory=dict)
    # What the file must be; None only for a file from outside the repository.
    expected: Expected | None = None
    file: Path | None = None  # the file picked by hand, for one from outside the repository

    def __post_init__(self) -> None:
        if isinstance(self.stored, Path):
            object.__setattr__(self, "file", self.stored)
            object.__setattr__(self, "stored", file_bytes(self.stored))

    @property
    def label(self) -> str:
        if self.artifact:
            return self.artifact.relpath
        return str(self.file) if self.file is not None else self.stored.name

    @property
    def source(self) -> str | None:
        return self.metadata.get("source")


def resolve_artifacts(
    workspace: Workspace, reference: str, kind: str | None = None, *, check: bool = True
) -> list[ResolvedArtifact]:
    """`reference` is a backup set id, `latest`, a repository-relative key or a file path.

    With `kind`, `latest` means the newest complete backup holding that source, and an
    artifact of another source is refused before anything else happens. With `check`
    each artifact is checked against what it is expected to be (`verify` reports that
    itself instead).
    """
    candidate = Path(reference).expanduser()
    if candidate.is_file():
        found = [_from_path(workspace, candidate.resolve())]
    elif "/" in reference:
        if not _in_repository(workspace, reference):
            raise NotFoundError(
                f"{reference}: no such artifact file; give a backup id from `jarvis-tui list`, "
                "`latest`, or the path of an artifact file"
            )
        found = [_from_key(workspace, reference)]
    else:
        backup_set = workspace.catalog.get_backup_set(reference, kind)
        found = [
            resolved_from_catalog(workspace, a)
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
    if check:
        for item in found:
            _check(workspace, item)
    return found


def resolved_from_catalog(workspace: Workspace, artifact: Artifact) -> ResolvedArtifact:
    """The catalog's artifact as a reader sees it: its file and what that must be."""
    stored = stored_bytes(workspace.reader(), artifact.relpath)
    return ResolvedArtifact(
        stored, artifact, _known_metadata(artifact), _expected(workspace, artifact)
    )


def expected_for(workspace: Workspace, relpath: str) -> Expected:
    """What the object under `relpath` must be: the catalog's artifact, or (one the
    catalog does not know) an artifact sealed under that name for this repository."""
    known = workspace.catalog.find_artifact_by_relpath(relpath)
    if known is not None:
        return _expected(workspace, known)
    return Expected(_identity(workspace, relpath))


def _expected(workspace: Workspace, artifact: Artifact) -> Expected:
    return Expected(
        _identity(workspace, artifact.relpath, artifact.source, artifact.set_id),
        key_id=artifact.key_id,
        checksum=artifact.checksum,
        plain_size=artifact.plain_size,
    )


def read_from(workspace: Workspace, item: ResolvedArtifact) -> str:
    """Which copy the artifact's bytes are read from (`local`, `s3`), or its file's path."""
    if item.file is not None:
        return str(item.file)
    reader = workspace.reader()
    if isinstance(reader, BestCopy):
        return reader.holder(item.stored.name) or reader.repository.name
    return reader.name


def log_copies_read(
    workspace: Workspace, items: list[ResolvedArtifact], context: JobContext
) -> None:
    """One job line per artifact: where it is read from (the best copy there is), when
    there is a copy to choose from."""
    if not isinstance(workspace.reader(), BestCopy):
        return
    for item in items:
        context.log(f"reading {item.label} from {read_from(workspace, item)}")


def _identity(
    workspace: Workspace, relpath: str, source: str | None = None, set_id: str | None = None
) -> dict[str, str]:
    repository = workspace.reader().repository_id() or "none (its .repository-id is missing)"
    if source is None or set_id is None:
        return {"repository": repository, "name": relpath}
    return artifact_identity(repository, source, set_id, relpath)


def _in_repository(workspace: Workspace, key: str) -> bool:
    """Is there an artifact under repository key `key` (False also for a key that is not
    a repository key at all, such as a missing absolute path)?"""
    try:
        return workspace.reader().stat(key) is not None
    except ValueError:
        return False


def _known_metadata(artifact: Artifact) -> dict[str, Any]:
    # A catalog rebuilt from sidecars keeps source and mode in columns, not in the metadata.
    return {"source": artifact.source, "mode": artifact.mode, **artifact.metadata}


def resolve_file(workspace: Workspace, path: Path) -> ResolvedArtifact:
    """An artifact file found beside another (no catalog row needed), checked up front."""
    return _checked(workspace, _from_path(workspace, path.resolve()))


def resolve_key(workspace: Workspace, key: str) -> ResolvedArtifact:
    """An artifact found in the repository beside another (no catalog row needed),
    checked up front."""
    return _checked(workspace, _from_key(workspace, key))


def _checked(workspace: Workspace, found: ResolvedArtifact) -> ResolvedArtifact:
    _check(workspace, found)
    return found


def _check(workspace: Workspace, item: ResolvedArtifact) -> None:
    """Refuse an artifact that is not the one asked for. When the repository's copy is
    what fails (damaged, or swapped for another at the same size) and a copy destination
    holds the object, that copy is checked and, if it passes, read instead."""
    if item.expected is None:
        return
    try:
        check_expected(item.stored, workspace.keyring(), item.expected)
    except IntegrityError as error:
        reader = workspace.reader()
        if item.file is not None or not isinstance(reader, BestCopy):
            raise
        if reader.holder(item.stored.name) != reader.repository.name:
            raise
        copy = reader.pass_over_repository(item.stored.name)
        if copy is None:
            raise
        logger.warning("%s; reading the copy on %s instead", error, copy)
        check_expected(item.stored, workspace.keyring(), item.expected)


def _from_path(workspace: Workspace, path: Path) -> ResolvedArtifact:
    # A path into BACKUP_DIR names an object of the local destination by its key.
    root = workspace.local_root.resolve()
    if path.is_relative_to(root):
        return _from_key(workspace, path.relative_to(root).as_posix())
    return _described(workspace, file_bytes(path), None, path)


def _from_key(workspace: Workspace, relpath: str) -> ResolvedArtifact:
    known = workspace.catalog.find_artifact_by_relpath(relpath)
    if known is not None:
        return resolved_from_catalog(workspace, known)
    stored = stored_bytes(workspace.reader(), relpath)
    return _described(workspace, stored, Expected(_identity(workspace, relpath)))


def _described(
    workspace: Workspace, stored: StoredBytes, expected: Expected | None, file: Path | None = None
) -> ResolvedArtifact:
    # Not the sidecar: anyone can edit it without the key, and a restore target (the file
    # `restore secrets` writes) must never come from what is not authenticated.
    # Which source it is comes first (a wrong kind is a usage error); what it is, after.
    # Only the sealed metadata record is read (with its header, authenticated): the data
    # is authenticated when the restore reads it.
    sealed = describe_artifact(stored, workspace.keyring())
    return ResolvedArtifact(stored, None, sealed, expected, file)
