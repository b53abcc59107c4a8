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

`--from s3` reads the copy on S3 instead (a fresh host with only the settings and the
key): the local repository adopts the copy's repository id (the id every artifact is
sealed with) once something there authenticates against it, and each artifact is
recorded stored on S3, and locally only when the repository holds it too. While
browsing another host's prefix (BACKUP_BROWSE) the repository is that prefix, read-only,
and the catalog is the browsed one's own.
"""

import contextlib
import hashlib
from dataclasses import dataclass, field

from engines.actions.rebuild_sources import (
    RebuildSource,
    adopt_repository_id,
    copy_repository_id,
    copy_source,
    repository_source,
)
from engines.actions.verbs import Request
from engines.catalog.rebuild import SealedArtifact, SetRecord, check_record, check_sealed
from engines.destinations import Destination, copy_destinations, key_problem
from engines.destinations.s3 import ArchivedObjectError
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
# An object that is there but cannot be read now: the disk or bucket failing, or archived.
_UNREADABLE = (OSError, ArchivedObjectError)


@dataclass
class RebuildReport:
    imported: int = 0
    skipped: list[str] = field(default_factory=list)  # not imported: no artifact, no key
    refused: list[str] = field(default_factory=list)  # not imported: failed authentication
    # Copies that could not be listed (one line each): while there are any, no row is dropped.
    unlisted: list[str] = field(default_factory=list)
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


def _identity(repository_id: str | None, relpath: str) -> Expected:
    """The container must say it is this file of this repository (set and source are
    what it is read for, and are checked against its place below)."""
    repository = repository_id or "none (its .repository-id is missing)"
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
    source: Destination,
    repository_id: str | None,
    keyring: Keyring,
    relpath: str,
    report: RebuildReport,
) -> SealedArtifact | None:
    stored = stored_bytes(source, relpath)
    try:
        checksum, size = _file_digest(stored)
        sealed = read_sealed_metadata(stored, keyring, _identity(repository_id, relpath))
        check_sealed(relpath, sealed)
    except KeyNotAvailableError as exc:
        report.skipped.append(f"{relpath}: {exc}")
        return None
    except IntegrityError as exc:
        report.refused.append(f"{relpath}: failed authentication ({exc}); not imported")
        return None
    except _UNREADABLE as exc:
        report.skipped.append(f"{relpath}: cannot read it ({_why(exc)}); not imported")
        return None
    problem = _placement_problem(relpath, sealed)
    if problem:
        report.refused.append(problem)
        return None
    try:
        sidecar = read_sidecar(stored)
    except _UNREADABLE as exc:  # not read is not forged: the sealed metadata is what counts
        report.skipped.append(f"{relpath}: its sidecar cannot be read ({exc}); not compared")
        return SealedArtifact(relpath, sealed, checksum, size)
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


def _why(error: Exception) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def _read_records(
    source: Destination, keyring: Keyring, report: RebuildReport, unreadable: set[str]
) -> dict[str, SetRecord]:
    """Every set record, authenticated and checked to be its set's; one that is not is
    reported, and kept (without content) so its set is not taken for complete; one that
    cannot be read (archived, the bucket failing) is reported and its set added to
    `unreadable`, to be left out until a rebuild can read it."""
    records: dict[str, SetRecord] = {}
    for key in record_keys(source):
        if key_problem(key):
            continue  # said with the listing
        set_id = set_id_of_record(key)
        relpath = record_relpath(set_id)
        try:
            sealed = read_set_record(source, keyring, set_id)
            check_record(relpath, sealed)
        except (IntegrityError, KeyNotAvailableError) as exc:
            report.refused.append(f"{relpath}: set record refused ({exc})")
            records[set_id] = SetRecord(set_id, None, str(exc))
            continue
        except _UNREADABLE as exc:
            # Unknown is not failed: the set waits for a rebuild that can read its record
            # (a catalog keeps the status of a set it knows).
            report.skipped.append(
                f"{relpath}: cannot read it ({_why(exc)}); backup {set_id} is not "
                "imported until it can be read: run the rebuild again then"
            )
            unreadable.add(set_id)
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


def _read_source(
    source: RebuildSource, keyring: Keyring, context: JobContext, report: RebuildReport
) -> tuple[list[SealedArtifact], dict[str, SetRecord], dict[str, int]]:
    """Every artifact and set record the source authenticates, and every key it holds
    (with its size)."""
    destination = source.destination
    present = _repository_keys(_sizes(destination), report)
    sidecars = sorted(key for key in present if key.endswith(SIDECAR_SUFFIX))
    repository_id = destination.repository_id()
    if not sidecars and repository_id is None:
        # An empty mount point looks like this: forgetting every row would be wrong.
        raise NotFoundError(
            f"{source.where} holds no repository (no artifacts, no .repository-id); " + source.fix
        )
    found: list[SealedArtifact] = []
    for sidecar in sidecars:
        context.raise_if_cancelled()
        relpath = sidecar.removesuffix(SIDECAR_SUFFIX)
        if relpath not in present:
            report.skipped.append(f"{relpath}: sidecar without its artifact")
            continue
        item = _read_one(destination, repository_id, keyring, relpath, report)
        if item is not None:
            found.append(item)
    # Under the lock no backup is running: a record still "running" was interrupted.
    unreadable: set[str] = set()
    records = _read_records(destination, keyring, report, unreadable)
    found = [item for item in found if item.set_id not in unreadable]
    _note_missing_records(found, records, report)
    return found, records, present


def _record_where_stored(
    workspace: Workspace, found: list[SealedArtifact], places: dict[str, dict[str, int]]
) -> None:
    """Each imported artifact is stored on every place (destination name: its listing)
    that holds it and its sidecar, the artifact at the size authenticated."""
    catalog = workspace.catalog
    for name, listing in places.items():
        states = catalog.copy_states_on(name)
        for item in found:
            if listing.get(item.relpath) != item.stored_size:
                continue
            if item.relpath + SIDECAR_SUFFIX not in listing:
                continue
            artifact = catalog.find_artifact_by_relpath(item.relpath)
            if artifact is not None and states.get(artifact.id) != "stored":
                catalog.set_copy_state(artifact.id, name, "stored")


def rebuild_catalog(
    workspace: Workspace, context: JobContext, from_copy: str | None = None
) -> RebuildReport:
    report = RebuildReport()
    keyring = workspace.keyring()  # no key, no rebuild: nothing unauthenticated goes in
    if from_copy is None:
        source = repository_source(workspace)
        # It only reads the repository: one on a read-only disk (a fresh host) is fine;
        # a browsed prefix is another host's, which no lock of this host guards.
        guard = (
            contextlib.nullcontext()
            if workspace.settings.browsing
            else workspace.lock("catalog rebuild", reading_only=True)
        )
    else:
        source = copy_source(workspace, from_copy)
        guard = workspace.lock("catalog rebuild")  # the repository may take the copy's id
    with guard:
        adopting = None if from_copy is None else copy_repository_id(workspace, source)
        found, records, present = _read_source(source, keyring, context, report)
        if adopting is not None:
            authentic = bool(found) or any(r.sealed is not None for r in records.values())
            adopt_repository_id(workspace, source, adopting, authentic, report.refused)
        places = {source.destination.name: present}
        if from_copy is not None:  # what the repository holds as well stays known
            places[workspace.repository.name] = _sizes(workspace.repository)
        if from_copy is None:
            report.unlisted = _list_copies(workspace, places)
        report.new_sets = workspace.catalog.import_sealed_artifacts(found, records)
        if not report.unlisted:  # a row is dropped only when no copy holds its file
            every_key = {key for listing in places.values() for key in listing}
            report.dropped = workspace.catalog.forget_vanished_artifacts(every_key)
        _record_where_stored(workspace, found, places)
    report.imported = len(found)
    for problem in [*report.skipped, *report.refused, *report.forged, *report.unlisted]:
        context.log(problem, level="warning")
    for relpath in report.dropped:
        context.log(f"{relpath}: no longer in the repository; its catalog row was dropped")
    context.log(
        f"catalog rebuilt from {source.where}: {report.imported} artifacts imported, "
        f"{len(report.skipped) + len(report.refused)} skipped, {len(report.forged)} sidecars "
        f"ignored, {len(report.dropped)} rows dropped"
    )
    return report


def _list_copies(workspace: Workspace, places: dict[str, dict[str, int]]) -> list[str]:
    """Add each copy destination's listing to `places`, so that a row whose file only a
    copy holds (a host rebuilt from S3) is kept. One line per copy that could not be
    listed: while there are any, no row is dropped."""
    unlisted = []
    for copy in [] if workspace.settings.browsing else copy_destinations(workspace.settings):
        try:
            places[copy.name] = _sizes(copy)
        except (OSError, JarvisError) as error:
            unlisted.append(
                f"{copy.name} could not be listed ({error}); no catalog row was dropped"
            )
    return unlisted


def _repository_keys(listing: dict[str, int], report: RebuildReport) -> dict[str, int]:
    """The listing without what no repository object is named like (put there by hand or
    by someone else), each said once with its name escaped."""
    kept = {}
    for key, size in listing.items():
        problem = key_problem(key)
        if problem:
            report.skipped.append(f"{key!r}: not a repository key ({problem}); left alone")
        else:
            kept[key] = size
    return kept


def _sizes(destination: Destination) -> dict[str, int]:
    return {stored.key: stored.size for stored in destination.list()}


def run(workspace: Workspace, request: Request, context: JobContext) -> RebuildReport:
    """The `rebuild-catalog` verb (`catalog rebuild [--from s3]`)."""
    return rebuild_catalog(workspace, context, request.from_copy)
