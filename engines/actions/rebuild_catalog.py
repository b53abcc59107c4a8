"""`jarvis-tui catalog rebuild`: the catalog refilled from what the repository authenticates.

Artifacts are found by their sidecars, but nothing is taken from a sidecar: each
artifact is read with the key (every chunk authenticated) and its row filled from
the metadata sealed inside it, its checksum and size from the file. A sidecar
that disagrees is reported and ignored, so no field an edit without the key can
reach (a restore target, a source, a set) ever lands in the catalog. Sets the
catalog already knows keep their status; a set it does not know takes its status from
its sealed record (`sets/<set id>.json.enc`, read with the key and checked to be that
set's); a record that fails the check is reported and its set comes back failed. Rows
of files that are gone are dropped.
"""

import hashlib
from dataclasses import dataclass, field

from engines.actions.verbs import Request
from engines.catalog.rebuild import SealedArtifact, SetRecord, check_record, check_sealed
from engines.errors import IntegrityError, JarvisError, KeyNotAvailableError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import (
    SEALED_ONLY_FIELDS,
    SIDECAR_SUFFIX,
    Expected,
    StoredBytes,
    read_sealed_metadata,
    read_sidecar,
)
from engines.pipeline.crypto import Keyring
from engines.repository.set_records import (
    read_set_record,
    record_keys,
    record_relpath,
    set_id_of_record,
)
from engines.repository.stored import stored_bytes
from engines.workspace import Workspace

# Sealed fields a sidecar leaves out on purpose (sizes of what is inside).
_SEALED_ONLY = SEALED_ONLY_FIELDS
_HASH_BLOCK = 1024 * 1024
_UNCHANGED = (
    "point BACKUP_DIR at the repository (is its disk mounted?); the catalog was not changed"
)


@dataclass
class RebuildReport:
    imported: int = 0
    skipped: list[str] = field(default_factory=list)  # not imported: no artifact, no key
    refused: list[str] = field(default_factory=list)  # not imported: failed authentication
    forged: list[str] = field(default_factory=list)  # sidecars that disagree (ignored)
    dropped: list[str] = field(default_factory=list)  # rows whose file is gone
    new_sets: list[str] = field(default_factory=list)

    @property
    def integrity_problems(self) -> bool:
        """Something in the repository failed authentication or a sidecar lies."""
        return bool(self.refused or self.forged)


def _file_digest(stored: StoredBytes) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with stored.open() as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _identity(workspace: Workspace, relpath: str) -> Expected:
    """The container must say it is this file of this repository (set and source are
    what it is read for, and are checked against its place below)."""
    repository = workspace.repository.repository_id() or "none (its .repository-id is missing)"
    return Expected({"repository": repository, "name": relpath})


def _placement_problem(relpath: str, sealed: dict) -> str | None:
    """An artifact sits at `<source>/<set id>_<name>`; one sealed for another place
    was moved or copied there."""
    folder, _, name = relpath.rpartition("/")
    if folder == sealed["source"] and name.startswith(f"{sealed['set_id']}_"):
        return None
    return (
        f"{relpath}: sealed as {sealed['source']} of backup {sealed['set_id']}, which "
        "belongs elsewhere in the repository (moved or copied there); not imported"
    )


def sidecar_disagreement(sidecar: dict, sealed: dict, checksum: str, size: int) -> list[str]:
    """The sidecar's fields that differ from the sealed metadata and the file itself."""
    truth = {**sealed, "checksum": checksum, "stored_size": size}
    keys = set(sidecar) | (set(truth) - set(_SEALED_ONLY))
    return sorted(
        key for key in keys if key not in sidecar or key not in truth or sidecar[key] != truth[key]
    )


def _read_one(
    workspace: Workspace, keyring: Keyring, relpath: str, report: RebuildReport
) -> SealedArtifact | None:
    stored = stored_bytes(workspace.repository, relpath)
    try:
        checksum, size = _file_digest(stored)
        sealed = read_sealed_metadata(stored, keyring, _identity(workspace, relpath))
        check_sealed(relpath, sealed)
    except KeyNotAvailableError as exc:
        report.skipped.append(f"{relpath}: {exc}")
        return None
    except IntegrityError as exc:
        report.refused.append(f"{relpath}: failed authentication ({exc}); not imported")
        return None
    except OSError as exc:
        report.skipped.append(f"{relpath}: cannot read it ({exc.strerror}); not imported")
        return None
    problem = _placement_problem(relpath, sealed)
    if problem:
        report.refused.append(problem)
        return None
    try:
        sidecar = read_sidecar(stored)
    except JarvisError:
        sidecar = {}
    differing = sidecar_disagreement(sidecar, sealed, checksum, size)
    if differing:
        report.forged.append(
            f"{relpath}: sidecar disagrees with the metadata sealed in the artifact on "
            f"{', '.join(differing)} (edited or forged); ignored, imported from the sealed "
            "metadata"
        )
    return SealedArtifact(relpath, sealed, checksum, size)


def _read_records(
    workspace: Workspace, keyring: Keyring, report: RebuildReport
) -> dict[str, SetRecord]:
    """Every set record, authenticated and checked to be its set's; one that is not is
    reported, and kept (without content) so its set is not taken for complete."""
    records: dict[str, SetRecord] = {}
    for key in record_keys(workspace.repository):
        set_id = set_id_of_record(key)
        relpath = record_relpath(set_id)
        try:
            sealed = read_set_record(workspace.repository, keyring, set_id)
            check_record(relpath, sealed)
        except (IntegrityError, KeyNotAvailableError) as exc:
            report.refused.append(f"{relpath}: set record refused ({exc})")
            records[set_id] = SetRecord(set_id, None, str(exc))
            continue
        except OSError as exc:
            report.skipped.append(f"{relpath}: cannot read it ({exc.strerror})")
            records[set_id] = SetRecord(set_id, None, f"cannot read it ({exc.strerror})")
            continue
        records[set_id] = SetRecord(set_id, sealed)
    return records


def _note_missing_records(
    found: list[SealedArtifact], records: dict[str, SetRecord], report: RebuildReport
) -> None:
    """An artifact sealed as part of a set that has a record, whose record is gone: the
    record of a failed set was deleted, so the set is not taken for complete."""
    for item in found:
        relpath = item.sealed.get("set_record")
        if relpath and item.set_id not in records:
            report.refused.append(
                f"{relpath}: missing, though {item.relpath} was sealed as part of a set "
                "that has one (deleted?); its set is imported as failed"
            )
            records[item.set_id] = SetRecord(item.set_id, None, "missing from the repository")


def rebuild_catalog(workspace: Workspace, context: JobContext) -> RebuildReport:
    report = RebuildReport()
    keyring = workspace.keyring()  # no key, no rebuild: nothing unauthenticated goes in
    root = workspace.local_root
    if not root.is_dir():
        raise NotFoundError(f"BACKUP_DIR {root} does not exist; {_UNCHANGED}")
    found: list[SealedArtifact] = []
    # It only reads the repository: one on a read-only disk (a fresh host) is fine.
    with workspace.lock("catalog rebuild", reading_only=True):
        present = {stored.key for stored in workspace.repository.list()}
        sidecars = sorted(key for key in present if key.endswith(SIDECAR_SUFFIX))
        if not sidecars and workspace.repository.repository_id() is None:
            # An empty mount point looks like this: forgetting every row would be wrong.
            raise NotFoundError(
                f"BACKUP_DIR {root} holds no repository (no artifacts, no .repository-id); "
                + _UNCHANGED
            )
        for sidecar in sidecars:
            context.raise_if_cancelled()
            relpath = sidecar.removesuffix(SIDECAR_SUFFIX)
            if relpath not in present:
                report.skipped.append(f"{relpath}: sidecar without its artifact")
                continue
            item = _read_one(workspace, keyring, relpath, report)
            if item is not None:
                found.append(item)
        # Under the lock no backup is running: a record still "running" was interrupted.
        records = _read_records(workspace, keyring, report)
        _note_missing_records(found, records, report)
        report.new_sets = workspace.catalog.import_sealed_artifacts(found, records)
        report.dropped = workspace.catalog.forget_vanished_artifacts(present)
    report.imported = len(found)
    for problem in [*report.skipped, *report.refused, *report.forged]:
        context.log(problem, level="warning")
    for relpath in report.dropped:
        context.log(f"{relpath}: no longer in the repository; its catalog row was dropped")
    context.log(
        f"catalog rebuilt: {report.imported} artifacts imported, "
        f"{len(report.skipped) + len(report.refused)} skipped, {len(report.forged)} sidecars "
        f"ignored, {len(report.dropped)} rows dropped"
    )
    return report


def run(workspace: Workspace, request: Request, context: JobContext) -> RebuildReport:
    """The `rebuild-catalog` verb (`catalog rebuild`)."""
    return rebuild_catalog(workspace, context)
