"""Pulling into the repository what it lacks from a copy destination (the guide's
`aws s3 sync s3://bucket/prefix/ BACKUP_DIR`), nothing trusted until it authenticates.

Each object is downloaded into a private staging folder under BACKUP_DIR, checked
there against what it must be (an artifact against what the catalog expects: its
identity, key, checksum and every chunk; a pack's blobs, an index file and a set's
record by their seals), and only then stored under its name through the repository's
face, so a pull killed at any point leaves no partial object under a final name. An
artifact's sidecar comes with it and is stored after it (one pulled alone is checked
against the artifact here). A fresh host's repository takes the copy's id only once an
object sealed with it authenticates, and objects named like no repository object are
left where they are. Objects go in the copy order (packs, index files, artifacts,
manifests, set records), so an interrupted pull leaves only unreferenced data, as an
interrupted copy does.
"""

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from engines.catalog import Artifact
from engines.destinations import Destination, LocalRepository, StoredObject, key_problem
from engines.errors import IntegrityError, JarvisError, JobCancelledError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.pipeline.artifacts import SIDECAR_SUFFIX, StoredBytes, verify_artifact
from engines.repository.copies import copy_rank
from engines.repository.repository_id import ensure_repository_id
from engines.repository.resolve import expected_for, resolved_from_catalog
from engines.repository.set_records import (
    SETS_FOLDER,
    read_set_record,
    record_relpath,
    set_id_of_record,
)
from engines.repository.stored import stored_bytes
from engines.store.index import load_index, read_index_file
from engines.store.layout import INDEX_PREFIX, PACKS_PREFIX, pack_key
from engines.store.pack_reader import read_pack
from engines.store.snapshots import load_manifest
from engines.workspace import Workspace

FILES_SOURCE = "files"


@dataclass(frozen=True)
class PullItem:
    """One object to pull, with its sidecar there (staged to check the artifact with;
    stored too unless the repository holds it already)."""

    source: Destination
    stored: StoredObject
    sidecar: StoredObject | None = None
    store_sidecar: bool = False

    @property
    def key(self) -> str:
        return self.stored.key

    @property
    def size(self) -> int:
        return self.stored.size + (self.sidecar.size if self.store_sidecar and self.sidecar else 0)


@dataclass
class PullPlan:
    items: list[PullItem]
    absent: list[str] = field(default_factory=list)  # wanted, but in no copy
    # (key, why): objects of a copy named like no repository object, left there
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.items)


@dataclass
class PullOutcome:
    pulled: list[str] = field(default_factory=list)
    pulled_bytes: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (key, why): not authentic
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why): not downloaded


def listings(copies: Iterable[Destination]) -> dict[str, tuple[Destination, StoredObject]]:
    """Every object of the copies, one listing each; the first copy holding a key wins."""
    found: dict[str, tuple[Destination, StoredObject]] = {}
    for copy in copies:
        for item in copy.list():
            found.setdefault(item.key, (copy, item))
    return found


def plan_pull(
    repository: Destination,
    remote: dict[str, tuple[Destination, StoredObject]],
    wanted: set[str] | None = None,
) -> PullPlan:
    """What the repository lacks (absent, or of another size) of `wanted` (every key
    when None), in the copy order, each artifact with its sidecar."""
    here = {item.key: item.size for item in repository.list()}
    keys = set(remote) if wanted is None else wanted
    ignored = sorted((key, problem) for key in keys if (problem := key_problem(key)))
    keys = keys - {key for key, _ in ignored}
    missing = {
        key for key in keys if key in remote and here.get(key) != remote[key][1].size
    }  # fmt: skip
    items = []
    for key in sorted(missing, key=lambda k: (copy_rank(k), k)):
        if key.endswith(SIDECAR_SUFFIX) and key.removesuffix(SIDECAR_SUFFIX) in missing:
            continue  # travels with its artifact
        source, stored = remote[key]
        sidecar = remote.get(key + SIDECAR_SUFFIX)
        store_sidecar = key + SIDECAR_SUFFIX in missing
        items.append(PullItem(source, stored, sidecar[1] if sidecar else None, store_sidecar))
    absent = sorted(key for key in keys if key not in remote and key not in here)
    return PullPlan(items, absent, ignored)


def keys_of_sets(workspace: Workspace, set_ids: Iterable[str]) -> set[str]:
    """Every object the sets need: their complete artifacts and sidecars, their records,
    and for a files snapshot the live index files and the packs holding its chunks
    (the manifest and index read from the best copy, authenticated)."""
    keyring = workspace.keyring()
    keys: set[str] = set()
    snapshots: list[Artifact] = []
    for set_id in set_ids:
        keys.add(record_relpath(set_id))
        for artifact in workspace.catalog.artifacts_of(set_id):
            if artifact.status != "complete":
                continue
            keys.update((artifact.relpath, artifact.relpath + SIDECAR_SUFFIX))
            if artifact.source == FILES_SOURCE:
                snapshots.append(artifact)
    if snapshots:
        index = load_index(workspace.reader(), keyring)
        keys.update(index.keys)
        for artifact in snapshots:
            resolved = resolved_from_catalog(workspace, artifact)
            manifest = load_manifest(resolved.stored, keyring, resolved.label, resolved.expected)
            for entry in manifest.entries:
                for chunk_id in entry.chunk_ids():
                    location = index.get(chunk_id)
                    if location is not None:
                        keys.add(pack_key(location.pack))
    return keys


def pull(
    workspace: Workspace, plan: PullPlan, staging_root: Path, context: JobContext | None
) -> PullOutcome:
    """Download, authenticate and store each item of `plan`; run under the repository
    lock. An object that does not authenticate is refused (left out, said), the others
    go on; the copy states of the artifacts pulled are recorded `stored` locally."""
    outcome = PullOutcome()
    staging = LocalRepository(staging_root, name="staging")
    repository = workspace.repository
    adopted = _stage_repository_id(workspace, staging_root)
    total = plan.bytes
    for item in plan.items:
        if context is not None:
            context.raise_if_cancelled()
        try:
            _download(item, staging)
            authenticate(workspace, staging, item.key)
        except (JobCancelledError, KeyNotAvailableError):
            raise  # a key that is not configured fails every object alike: said once
        except (OSError, JarvisError) as error:
            _unstage(staging, item)
            kind = outcome.refused if isinstance(error, IntegrityError) else outcome.failed
            kind.append((item.key, str(error) or type(error).__name__))
            if context is not None:
                context.log(f"{item.key}: not pulled: {error}", level="error")
            continue
        if adopted is not None and _bound_to_repository(item.key):
            repository.ensure_repository_id(adopted)  # it authenticated against the id
            adopted = None
        repository.put(staging.path_for(item.key), item.key)
        if item.sidecar is not None and item.store_sidecar:
            repository.put(staging.path_for(item.sidecar.key), item.sidecar.key)
        _unstage(staging, item)
        _record_stored(workspace, item.key)
        outcome.pulled.append(item.key)
        outcome.pulled_bytes += item.size
        if context is not None:
            context.progress(outcome.pulled_bytes, total)
    return outcome


def _unstage(staging: LocalRepository, item: PullItem) -> None:
    for stored in (item.stored, item.sidecar):
        # One never staged (a name too long for this disk) must not stop the pull.
        with contextlib.suppress(OSError, JarvisError):
            if stored is not None:
                staging.delete(stored.key)


def _download(item: PullItem, staging: LocalRepository) -> None:
    for stored in (item.sidecar, item.stored):
        if stored is not None:
            item.source.get(stored.key, staging.path_for(stored.key))
            got = staging.stat(stored.key)
            if got is None or got.size != stored.size:
                raise IntegrityError(
                    f"{stored.key}: {got.size if got else 0} bytes downloaded from "
                    f"{item.source.name}, {stored.size} listed there"
                )


def authenticate(workspace: Workspace, staging: Destination, key: str) -> None:
    """IntegrityError (or KeyNotAvailableError) unless the staged object is what it must
    be; a sidecar alone is a hint nobody trusts and is checked with its artifact."""
    keyring = workspace.keyring()
    if key.endswith(SIDECAR_SUFFIX):  # alone: the artifact is here already
        key = key.removesuffix(SIDECAR_SUFFIX)
        beside = replace(
            stored_bytes(workspace.repository, key),
            open_sidecar=lambda: staging.open_read(key + SIDECAR_SUFFIX),
        )
        _check_artifact(workspace, beside, key)
    elif key.startswith(PACKS_PREFIX):
        for _, _, plain in read_pack(staging, key, keyring).blobs():
            if isinstance(plain, IntegrityError):
                raise plain
    elif key.startswith(INDEX_PREFIX):
        read_index_file(staging, key, keyring)
    elif key.startswith(f"{SETS_FOLDER}/"):
        read_set_record(staging, keyring, set_id_of_record(key))
    else:
        _check_artifact(workspace, stored_bytes(staging, key), key)


def _check_artifact(workspace: Workspace, stored: StoredBytes, key: str) -> None:
    expected = expected_for(workspace, key)
    report = verify_artifact(stored, workspace.keyring(), decompress=False, expected=expected)
    if not report.ok:
        raise IntegrityError(f"{key}: " + "; ".join(report.problems))


def _stage_repository_id(workspace: Workspace, staging_root: Path) -> str | None:
    """The staging folder takes the repository's id, or on a fresh host its copy's (sealed
    records are checked against it). That copy's id, to be adopted by the repository once
    an object bound to it authenticates (a forged `.repository-id` never is), else None."""
    ours = workspace.repository.repository_id()
    found = ours or workspace.reader().repository_id()
    if found is not None:
        ensure_repository_id(staging_root, found)
    return found if ours is None else None


def _bound_to_repository(key: str) -> bool:
    """Artifacts and set records seal the repository's id; packs and index files do not."""
    return not key.startswith((PACKS_PREFIX, INDEX_PREFIX)) and not key.endswith(SIDECAR_SUFFIX)


def record_present(workspace: Workspace, wanted: set[str] | None) -> None:
    """Artifacts of `wanted` (every one when None) the repository holds, with their
    sidecars, at the size the catalog recorded, recorded `stored` here: brought by hand
    (the guide's `aws s3 sync`) or by a pull killed before it said so. Their bytes are
    authenticated by every reader, as the pulled ones are."""
    here = {item.key: item.size for item in workspace.repository.list()}
    catalog, name = workspace.catalog, workspace.repository.name
    states = catalog.copy_states_on(name)
    for artifact in catalog.all_artifacts():
        if artifact.status != "complete" or states.get(artifact.id) == "stored":
            continue
        if wanted is not None and artifact.relpath not in wanted:
            continue
        sidecar = artifact.relpath + SIDECAR_SUFFIX
        if here.get(artifact.relpath) == artifact.stored_size and sidecar in here:
            catalog.set_copy_state(artifact.id, name, "stored")


def _record_stored(workspace: Workspace, key: str) -> None:
    artifact = workspace.catalog.find_artifact_by_relpath(key)
    if artifact is not None:
        workspace.catalog.set_copy_state(artifact.id, workspace.repository.name, "stored")
