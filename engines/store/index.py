"""The index: which pack holds each chunk, at which offset.

Each backup writes one index file listing the chunks it added, after their
packs are complete and before its snapshot manifest; `prune` (and `repair`)
replace all index files with one rebuilt from the packs' own trailers. An index
file is an encrypted container (engines.pipeline.crypto) without a sidecar: it is not an
artifact of a backup set.

Freshness: each index file seals a generation, which every prune raises. The
file a prune writes is the base of its generation and every later backup's
index names it; loading takes only the newest generation, so an index file
replayed from before a prune is ignored (and reported), and a missing base is
reported. Entries whose pack is gone are dropped, so a backup stores their
chunks again instead of trusting them.
"""

import json
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from engines.destinations.base import Destination
from engines.errors import IntegrityError, KeyNotAvailableError, NotFoundError
from engines.pipeline.crypto import ContainerReader, ContainerWriter, Keyring, MasterKey
from engines.store.keys import ID_SIZE
from engines.store.layout import (
    INDEX_PREFIX,
    INDEX_SUFFIX,
    NAME_BYTES,
    PACK_SUFFIX,
    PACKS_PREFIX,
    index_key,
    new_object_name,
    pack_key,
)
from engines.store.packs import BlobLocation

FORMAT = "jarvis-files-index/1"
UNCOMPRESSED = 0  # container codec id: chunk ids are random, compressing them gains nothing
_PACK = struct.Struct(f">{NAME_BYTES}sI")  # pack name, number of entries
_ENTRY = struct.Struct(f">{ID_SIZE}sIII")  # chunk id, offset, length, plain size


@dataclass
class Index:
    locations: dict[bytes, BlobLocation] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # the index files it was read from
    generation: int = 0
    base: str | None = None  # the index file the last prune (or repair) wrote
    problems: list[str] = field(default_factory=list)  # stale files, missing packs
    dropped: dict[bytes, BlobLocation] = field(default_factory=dict)  # their packs are gone

    def __contains__(self, chunk_id: bytes) -> bool:
        return chunk_id in self.locations

    def get(self, chunk_id: bytes) -> BlobLocation | None:
        return self.locations.get(chunk_id)

    def packs(self) -> set[str]:
        return {location.pack for location in self.locations.values()}


def encode(entries: Iterable[tuple[bytes, BlobLocation]]) -> bytes:
    by_pack: dict[str, list[tuple[bytes, BlobLocation]]] = defaultdict(list)
    for chunk_id, location in entries:
        by_pack[location.pack].append((chunk_id, location))
    parts = []
    for pack, items in sorted(by_pack.items()):
        parts.append(_PACK.pack(bytes.fromhex(pack), len(items)))
        parts.extend(
            _ENTRY.pack(chunk_id, loc.offset, loc.length, loc.raw_length) for chunk_id, loc in items
        )
    return b"".join(parts)


def decode(data: bytes, name: str) -> list[tuple[bytes, BlobLocation]]:
    entries = []
    view = memoryview(data)
    position = 0
    try:
        while position < len(view):
            raw_name, count = _PACK.unpack_from(view, position)
            position += _PACK.size
            pack = raw_name.hex()
            end = position + count * _ENTRY.size
            if end > len(view):
                raise IntegrityError(f"{name}: index entries cut short")
            for chunk_id, offset, length, raw in _ENTRY.iter_unpack(view[position:end]):
                entries.append((chunk_id, BlobLocation(pack, offset, length, raw)))
            position = end
    except struct.error:
        raise IntegrityError(f"{name}: index is malformed") from None
    return entries


def write_index(
    repository: Destination,
    key: MasterKey,
    entries: list[tuple[bytes, BlobLocation]],
    *,
    generation: int = 0,
    base: str | None = None,
    rebuilt: bool = False,
) -> str:
    """Seal `entries` into a new index file (complete and durable once stored); return its key.

    A backup passes the generation and base of the index it loaded; a prune or repair
    (`rebuilt`) passes the next generation, and its file becomes the new base.
    """
    relpath = index_key(new_object_name())
    body = encode(entries)
    metadata = {
        "format": FORMAT,
        "entries": len(entries),
        "generation": generation,
        "base": relpath if rebuilt else base,
    }
    with repository.open_write(relpath) as handle:
        writer = ContainerWriter(handle, key, UNCOMPRESSED)
        writer.write(body)
        writer.finish(json.dumps(metadata).encode())
    return relpath


@dataclass
class IndexFile:
    entries: list[tuple[bytes, BlobLocation]]
    generation: int
    base: str | None


def read_index_file(repository: Destination, key: str, keyring: Keyring) -> IndexFile:
    """The index file stored under `key`; NotFoundError when it is gone."""
    with repository.open_read(key) as handle:
        reader = ContainerReader(handle, keyring, key)
        body = b"".join(reader.data_chunks())
    try:
        metadata = json.loads(reader.metadata or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IntegrityError(f"{key}: index metadata is not JSON") from None
    generation = metadata.get("generation", 0) if isinstance(metadata, dict) else None
    if type(generation) is not int or generation < 0:
        raise IntegrityError(f"{key}: index metadata names no valid generation")
    base = metadata.get("base")
    return IndexFile(decode(body, key), generation, base if isinstance(base, str) else None)


def index_files(repository: Destination) -> list[str]:
    """The keys of the index files, directly in `files/index/`, in key order."""
    return [
        stored.key
        for stored in repository.list(INDEX_PREFIX)
        if stored.key.endswith(INDEX_SUFFIX) and "/" not in stored.key[len(INDEX_PREFIX) :]
    ]


def pack_sizes(repository: Destination) -> dict[str, int]:
    """The size of every pack stored where `pack_key` puts it, by name: one listing
    rather than a request per pack (which on a remote destination is a round trip)."""
    sizes = {}
    for stored in repository.list(PACKS_PREFIX):
        name = stored.key.rpartition("/")[2].removesuffix(PACK_SUFFIX)
        if pack_key(name) == stored.key:
            sizes[name] = stored.size
    return sizes


def load_index(repository: Destination, keyring: Keyring, *, every_key: bool = False) -> Index:
    """The live index: files of the newest generation, entries whose pack exists.

    Files sealed under a key that is not configured are left out with a warning (unless
    `every_key`, which prune needs): they can only name chunks of that older key, which
    no snapshot made under a configured key uses, while a snapshot of the older key
    cannot be opened anyway, with an error that names the variable to set.
    """
    read: list[tuple[str, IndexFile]] = []
    unopened: list[str] = []
    for relpath in index_files(repository):
        try:
            read.append((relpath, read_index_file(repository, relpath, keyring)))
        except KeyNotAvailableError as exc:
            if every_key:
                raise
            unopened.append(relpath)
            key_id = exc.key_id
        except IntegrityError as exc:
            raise IntegrityError(
                f"{exc}; run `jarvis-tui repair` to rebuild the index from the packs"
            ) from None
        except NotFoundError:
            continue  # removed by a prune that finished meanwhile
    index = Index(generation=max((file.generation for _, file in read), default=0))
    for relpath, file in read:
        if file.generation < index.generation:
            index.problems.append(
                f"{relpath} was written before the last prune (generation {file.generation}, "
                f"now {index.generation}): ignored; the next prune removes it"
            )
            continue
        index.keys.append(relpath)
        index.base = index.base or file.base
    _merge_present(repository, [file for relpath, file in read if relpath in index.keys], index)
    if unopened:
        index.problems.append(
            f"{len(unopened)} index file(s) sealed under key id {key_id}, which is not "
            "configured, were left out; set BACKUP_ENCRYPTION_KEY_PREVIOUS to the older key "
            "so old snapshots stay restorable and prune can run"
        )
    if index.base is not None and index.base not in index.keys + unopened:
        index.problems.append(
            f"{index.base}, the index the last prune wrote, is missing; run `jarvis-tui repair`"
        )
    return index


def _merge_present(repository: Destination, files: list[IndexFile], index: Index) -> None:
    """Every entry into `index`, preferring for each chunk a pack that exists; entries
    whose pack is gone (and that no other entry replaces) go to `index.dropped`."""
    packs = {location.pack for file in files for _, location in file.entries}
    absent = packs - pack_sizes(repository).keys() if packs else set()
    for file in files:
        for chunk_id, location in file.entries:
            if location.pack in absent:
                if chunk_id not in index.locations:
                    index.dropped[chunk_id] = location
            else:
                index.locations[chunk_id] = location
                index.dropped.pop(chunk_id, None)
    if index.dropped:
        index.problems.append(
            f"the index lists {len(index.dropped)} chunk(s) in {len(absent)} pack(s) that are "
            f"missing (e.g. {pack_key(min(absent))}): left out, so a backup stores them again; "
            "run `jarvis-tui repair` to see which snapshots are affected"
        )
