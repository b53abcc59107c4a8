"""Checking a files snapshot beyond its manifest artifact.

Structure: every chunk the snapshot references is in the index, and its pack
exists and is long enough. With `read_data`, every byte of every pack the
snapshot uses is read on worker threads: header, trailer (bound to the pack),
layout and length, every blob authenticated (AES-GCM) and decompressed within
its declared size, and the snapshot's own chunks' ids recomputed.
"""

import dataclasses
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from engines.errors import IntegrityError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.pipeline.artifacts import ArtifactBytes, VerifyReport
from engines.pipeline.compression import default_threads
from engines.pipeline.crypto import Keyring
from engines.repository.resolve import ResolvedArtifact
from engines.store.index import load_index, pack_sizes
from engines.store.keys import StoreKeys, store_keys
from engines.store.layout import is_snapshot_key, pack_key
from engines.store.pack_reader import open_pack, read_pack_bytes
from engines.store.packs import BlobLocation
from engines.store.resolve import stored_name
from engines.store.snapshots import load_manifest, shown
from engines.workspace import Workspace

SHOWN_PROBLEMS = 20


@dataclass
class SnapshotCheck:
    problems: list[str] = field(default_factory=list)
    chunks: int = 0
    packs: int = 0
    bytes_read: int = 0


def check_snapshot(
    workspace: Workspace,
    manifest_bytes: ArtifactBytes,
    label: str,
    context: JobContext,
    *,
    read_data: bool = False,
) -> SnapshotCheck:
    keyring = workspace.keyring()
    result = SnapshotCheck()
    manifest = load_manifest(manifest_bytes, keyring, label)
    index = load_index(workspace.reader(), keyring)
    for problem in index.problems:
        context.log(problem, level="warning")
    owner: dict[bytes, str] = {}
    for entry in manifest.entries:
        for chunk_id in entry.chunk_ids():
            owner.setdefault(chunk_id, entry.path)
    result.chunks = len(owner)
    by_pack: dict[str, list[tuple[bytes, BlobLocation]]] = defaultdict(list)
    problems = []
    for chunk_id, path_of in owner.items():
        location = index.get(chunk_id) or index.dropped.get(chunk_id)
        if location is None:
            problems.append(f"{shown(path_of)}: chunk {chunk_id.hex()[:16]} is not in the index")
        else:
            by_pack[location.pack].append((chunk_id, location))
    result.packs = len(by_pack)
    sizes = pack_sizes(workspace.reader()) if by_pack else {}
    for pack, items in sorted(by_pack.items()):
        size = sizes.get(pack)
        if size is None:
            problems.append(f"pack {pack_key(pack)} is missing ({len(items)} chunks)")
        elif size < max(loc.offset + loc.length for _, loc in items):
            problems.append(f"pack {pack_key(pack)} is truncated")
    if read_data and not problems:
        keys = _keys_for(keyring, manifest.key_id, manifest.chunk_id_version)
        total = sum(loc.length for items in by_pack.values() for _, loc in items)
        with ThreadPoolExecutor(default_threads(), thread_name_prefix="verify") as pool:
            futures = [
                pool.submit(_read_pack, workspace, keyring, keys, pack, items, owner)
                for pack, items in sorted(by_pack.items())
            ]
            for future in futures:
                context.raise_if_cancelled()
                pack_problems, read = future.result()
                problems.extend(pack_problems)
                result.bytes_read += read
                context.progress(result.bytes_read, total)
    result.problems = _shortened(problems)
    return result


def _keys_for(keyring: Keyring, key_id: str, chunk_id_version: int) -> StoreKeys:
    try:
        return store_keys(keyring.find(key_id), chunk_id_version)
    except KeyNotAvailableError:
        raise IntegrityError(
            f"the snapshot's chunks were named with key id {key_id}, which is not configured; "
            "add it to BACKUP_ENCRYPTION_KEY_PREVIOUS"
        ) from None


def _read_pack(
    workspace: Workspace,
    keyring: Keyring,
    keys: StoreKeys,
    pack: str,
    items: list[tuple[bytes, BlobLocation]],
    owner: dict[bytes, str],
) -> tuple[list[str], int]:
    """Every byte of one pack: header, trailer, layout, length and every blob it holds
    (authenticated, decompressed within its declared size); the snapshot's own chunks
    also where the index says they are, with their ids recomputed."""
    data = read_pack_bytes(workspace.reader(), pack_key(pack))
    files = sorted({shown(owner[chunk_id]) for chunk_id, _ in items})
    try:
        opened = open_pack(data, keyring, pack)
    except (IntegrityError, KeyNotAvailableError) as exc:
        affected = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        return [f"pack {pack_key(pack)}: {exc} (holds data of {affected})"], len(data)
    wanted = dict(items)
    problems = []
    found: set[bytes] = set()
    for chunk_id, location, plain in opened.blobs():
        expected = wanted.get(chunk_id)
        found.add(chunk_id)
        if isinstance(plain, IntegrityError):
            where = shown(owner[chunk_id]) if expected else f"pack {pack_key(pack)}"
            problems.append(f"{where}: {plain}")
            continue
        if expected is None:
            continue
        if expected != location:
            problems.append(
                f"{shown(owner[chunk_id])}: the index places chunk {chunk_id.hex()[:16]} "
                f"elsewhere in pack {pack} than its trailer does"
            )
        elif keys.chunk_id(plain) != chunk_id:
            problems.append(
                f"{shown(owner[chunk_id])}: chunk content in pack {pack} does not match its id"
            )
    for chunk_id in wanted.keys() - found:
        problems.append(
            f"{shown(owner[chunk_id])}: pack {pack} does not hold chunk {chunk_id.hex()[:16]}"
        )
    return problems, len(data)


def _shortened(problems: list[str]) -> list[str]:
    if len(problems) <= SHOWN_PROBLEMS:
        return problems
    return [*problems[:SHOWN_PROBLEMS], f"... and {len(problems) - SHOWN_PROBLEMS} more problems"]


def with_snapshot_check(
    workspace: Workspace,
    target: ResolvedArtifact,
    report: VerifyReport,
    context: JobContext,
    *,
    read_data: bool,
) -> VerifyReport:
    """`report` of a files snapshot's manifest, extended with its chunks and packs."""
    if not report.ok or not is_snapshot_key(stored_name(target)):
        return report
    try:
        check = check_snapshot(workspace, target.stored, target.label, context, read_data=read_data)
    except IntegrityError as exc:
        return dataclasses.replace(report, ok=False, problems=[str(exc)])
    what = "read and authenticated" if read_data else "located"
    context.log(f"{target.label}: {check.chunks} chunks in {check.packs} packs {what}")
    return dataclasses.replace(report, ok=not check.problems, problems=check.problems)
