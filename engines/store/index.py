"""The index: which pack holds each chunk, at which offset.

Each backup writes one index file listing the chunks it added, after their
packs are complete and before its snapshot manifest; `prune` replaces all
index files with one rebuilt from the packs' own trailers. An index file is an
encrypted container (engines.crypto) without a sidecar: it is not an artifact
of a backup set.
"""

import json
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engines.crypto import ContainerReader, ContainerWriter, Keyring, MasterKey
from engines.destinations.local import LocalRepository
from engines.errors import IntegrityError
from engines.fsutil import atomic_output, ensure_private_dir
from engines.store.keys import ID_SIZE
from engines.store.layout import INDEX_PREFIX, INDEX_SUFFIX, NAME_BYTES, index_key, new_object_name
from engines.store.packs import BlobLocation

FORMAT = "jarvis-files-index/1"
UNCOMPRESSED = 0  # container codec id: chunk ids are random, compressing them gains nothing
_PACK = struct.Struct(f">{NAME_BYTES}sI")  # pack name, number of entries
_ENTRY = struct.Struct(f">{ID_SIZE}sIII")  # chunk id, offset, length, plain size


@dataclass
class Index:
    locations: dict[bytes, BlobLocation] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # the index files it was read from

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
    repository: LocalRepository, key: MasterKey, entries: list[tuple[bytes, BlobLocation]]
) -> str:
    """Seal `entries` into a new index file (fsynced, renamed into place); return its key."""
    relpath = index_key(new_object_name())
    path = repository.path_for(relpath)
    ensure_private_dir(path.parent)
    body = encode(entries)
    with atomic_output(path) as handle:
        writer = ContainerWriter(handle, key, UNCOMPRESSED)
        writer.write(body)
        writer.finish(json.dumps({"format": FORMAT, "entries": len(entries)}).encode())
    return relpath


def read_index_file(path: Path, keyring: Keyring, name: str) -> list[tuple[bytes, BlobLocation]]:
    with path.open("rb") as handle:
        reader = ContainerReader(handle, keyring, name)
        body = b"".join(reader.data_chunks())
    return decode(body, name)


def index_files(repository: LocalRepository) -> list[str]:
    folder = repository.path_for(INDEX_PREFIX.rstrip("/"))
    if not folder.is_dir():
        return []
    return sorted(
        f"{INDEX_PREFIX}{p.name}"
        for p in folder.iterdir()
        if p.name.endswith(INDEX_SUFFIX) and not p.name.startswith(".")
    )


def load_index(repository: LocalRepository, keyring: Keyring) -> Index:
    index = Index()
    for relpath in index_files(repository):
        try:
            entries = read_index_file(repository.path_for(relpath), keyring, relpath)
        except IntegrityError as exc:
            raise IntegrityError(
                f"{exc}; run `jarvis-tui prune` to rebuild the index from the packs"
            ) from None
        except FileNotFoundError:
            continue  # removed by a prune that finished meanwhile
        index.locations.update(entries)
        index.keys.append(relpath)
    return index
