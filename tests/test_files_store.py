"""The files store's parts: keyed chunking, chunk ids, packs, the index."""

import hashlib
import io
import os
import tracemalloc

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engines.destinations.local import LocalRepository
from engines.errors import IntegrityError, KeyNotAvailableError
from engines.pipeline.crypto import Keyring, MasterKey
from engines.store.blobs import STORED, compress_chunk, decompress_chunk
from engines.store.chunker import MAX_SIZE, MIN_SIZE, SINGLE_CHUNK_LIMIT, Chunker
from engines.store.index import load_index, write_index
from engines.store.keys import store_keys
from engines.store.layout import pack_key
from engines.store.pack_reader import BlobReader, read_pack, read_trailer
from engines.store.packs import (
    ENTRY,
    FOOTER,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    PackSealer,
    PackWriter,
)
from tests.support.files_env import KEY, OTHER_KEY, random_text

MASTER = MasterKey.from_hex(KEY)
OTHER = MasterKey.from_hex(OTHER_KEY)


def _reader(*blocks: bytes):
    pending = iter([*blocks, b""])
    return lambda _size: next(pending, b"")


def _cuts(chunker: Chunker, data: bytes) -> list[int]:
    view = iter([data[i : i + 3_000_000] for i in range(0, len(data), 3_000_000)])
    sizes = [len(c) for c in chunker.chunks(lambda _size: next(view, b""))]
    assert sum(sizes) == len(data)
    return sizes


@pytest.fixture(scope="module")
def big() -> bytes:
    return os.urandom(12 * 1024 * 1024) + random_text(8 * 1024 * 1024)


def test_chunks_respect_the_size_bounds_and_do_not_depend_on_read_sizes(big):
    chunker = Chunker(store_keys(MASTER).gear_seed)
    sizes = _cuts(chunker, big)
    assert all(MIN_SIZE < size <= MAX_SIZE for size in sizes[:-1])
    whole = [len(c) for c in chunker.chunks(_reader(big))]
    assert whole == sizes


def test_an_edit_in_the_middle_changes_only_nearby_chunks(big):
    keys = store_keys(MASTER)
    chunker = Chunker(keys.gear_seed)
    middle = len(big) // 2
    edited = big[:middle] + b"an edit in the middle" + big[middle + 21 :]
    before = {keys.chunk_id(c) for c in chunker.chunks(_reader(big))}
    after = [keys.chunk_id(c) for c in chunker.chunks(_reader(edited))]
    assert len(after) > 8
    assert sum(1 for chunk_id in after if chunk_id not in before) <= 2


def test_boundaries_and_ids_depend_on_the_key(big):
    mine, theirs = store_keys(MASTER), store_keys(OTHER)
    assert _cuts(Chunker(mine.gear_seed), big) != _cuts(Chunker(theirs.gear_seed), big)
    data = b"the same plaintext"
    assert mine.chunk_id(data) != theirs.chunk_id(data)
    assert mine.chunk_id(data) != hashlib.sha256(data).digest()
    assert mine.chunk_id(data) == store_keys(MasterKey.from_hex(KEY)).chunk_id(data)


def test_small_files_are_one_chunk():
    assert SINGLE_CHUNK_LIMIT >= MIN_SIZE


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compression_round_trip_and_incompressible_data_stored(codec):
    text = random_text(300_000)
    packed = compress_chunk(text, codec, 3)
    assert len(packed) < len(text) / 2
    assert decompress_chunk(packed, len(text), "x") == text
    noise = os.urandom(300_000)
    assert compress_chunk(noise, codec, 3)[0] == STORED
    with pytest.raises(IntegrityError, match="index says"):
        decompress_chunk(packed, len(text) + 1, "x")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_a_blob_that_inflates_past_its_declared_size_is_damage_and_stays_small(codec):
    bomb = compress_chunk(bytes(64 * 1024 * 1024), codec, 3)
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError, match="index says 4096"):
            decompress_chunk(bomb, 4096, "x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # never the 64 MiB the blob would inflate to


def _write_pack(repository: LocalRepository, chunks: list[bytes]):
    keys = store_keys(MASTER)
    sealer = PackSealer(MASTER)
    with PackWriter(repository, sealer) as writer:
        for data in chunks:
            chunk_id = keys.chunk_id(data)
            writer.add(chunk_id, sealer.seal(chunk_id, compress_chunk(data, "zstd", 3)), len(data))
    return writer.locations


def test_pack_round_trip_index_and_trailer(tmp_path):
    repository = LocalRepository(tmp_path / "repo")
    repository.ensure_repository_id()
    chunks = [random_text(50_000, seed) for seed in range(5)]
    locations = _write_pack(repository, chunks)
    keyring = Keyring(MASTER)
    write_index(repository, MASTER, locations)
    index = load_index(repository, keyring)
    with BlobReader(repository, keyring) as reader:
        for (chunk_id, _), data in zip(locations, chunks, strict=True):
            assert reader.read(chunk_id, index.get(chunk_id)) == data
    pack = next((tmp_path / "repo/files/packs").glob("*/*.pack"))
    pack_key = f"files/packs/{pack.parent.name}/{pack.name}"
    assert [entry for entry in read_trailer(repository, pack_key, keyring)] == locations
    assert oct(pack.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(KeyNotAvailableError):
        load_index(repository, Keyring(OTHER), every_key=True)
    without_the_key = load_index(repository, Keyring(OTHER))
    assert not without_the_key.locations
    assert "BACKUP_ENCRYPTION_KEY_PREVIOUS" in without_the_key.problems[0]


def test_a_flipped_bit_or_a_swapped_id_fails_authentication(tmp_path):
    repository = LocalRepository(tmp_path / "repo")
    repository.ensure_repository_id()
    locations = _write_pack(repository, [random_text(40_000, 1), random_text(40_000, 2)])
    (first_id, first), (second_id, _) = locations
    pack = next((tmp_path / "repo/files/packs").glob("*/*.pack"))
    keyring = Keyring(MASTER)
    with BlobReader(repository, keyring) as reader, pytest.raises(IntegrityError):
        reader.read(second_id, first)  # the blob of one chunk presented as another
    damaged = bytearray(pack.read_bytes())
    damaged[first.offset + 20] ^= 0x01
    pack.write_bytes(bytes(damaged))
    with (
        BlobReader(repository, keyring) as reader,
        pytest.raises(IntegrityError, match="failed authentication"),
    ):
        reader.read(first_id, first)


def test_a_damaged_pack_header_is_damage_not_a_missing_key(tmp_path):
    repository = LocalRepository(tmp_path / "repo")
    repository.ensure_repository_id()
    _write_pack(repository, [random_text(40_000, 1)])
    pack = next((tmp_path / "repo/files/packs").glob("*/*.pack"))
    damaged = bytearray(pack.read_bytes())
    damaged[12] ^= 0x01  # inside the key id
    pack.write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError, match="header is damaged"):
        read_trailer(repository, f"files/packs/{pack.parent.name}/{pack.name}", Keyring(MASTER))


def test_version_1_packs_stay_readable(tmp_path):
    """A pack as the first format wrote it: no header digest, a trailer bound to nothing."""
    repository = LocalRepository(tmp_path / "repo")
    repository.ensure_repository_id()
    keys = store_keys(MASTER)
    salt = os.urandom(32)
    header = HEADER.pack(MAGIC, 1, bytes.fromhex(MASTER.key_id), salt)
    aead = AESGCM(MASTER.derive_artifact_key(salt))
    chunks = [random_text(30_000, seed) for seed in range(3)]
    body, entries, offset = b"", [], HEADER_SIZE
    for data in chunks:
        chunk_id, nonce = keys.chunk_id(data), os.urandom(12)
        blob = compress_chunk(data, "zstd", 3)
        sealed = nonce + aead.encrypt(nonce, blob, header + chunk_id)
        entries.append((chunk_id, offset, len(sealed), len(data)))
        body, offset = body + sealed, offset + len(sealed)
    nonce = os.urandom(12)
    trailer = nonce + aead.encrypt(
        nonce, b"".join(ENTRY.pack(*e) for e in entries), header + b"trailer"
    )
    name = "ab" * 16
    pack = repository.path_for(pack_key(name))
    pack.parent.mkdir(parents=True)
    pack.write_bytes(header + body + trailer + FOOTER.pack(len(trailer)))
    keyring = Keyring(MASTER)
    opened = read_pack(repository, pack_key(name), keyring)
    assert [plain for _, _, plain in opened.blobs()] == chunks
    with BlobReader(repository, keyring) as reader:
        for chunk_id, location in opened.entries:
            assert reader.read(chunk_id, location) in chunks
    pack.write_bytes(pack.read_bytes() + b"\0")
    with pytest.raises(IntegrityError):
        read_pack(repository, pack_key(name), keyring)


class _RemoteLike:
    """The local repository seen as a remote destination would be: every read a stream
    without a file descriptor (seekable or not), each `open_read` counted."""

    def __init__(self, local: LocalRepository, *, seekable: bool, pipe: int | None = None):
        self._local = local
        self._seekable = seekable
        self._pipe = pipe  # a descriptor the streams expose that is no file (an HTTP socket)
        self.opened: list[tuple[str, int, int | None]] = []

    def __getattr__(self, name):
        return getattr(self._local, name)

    def open_read(self, key: str, offset: int = 0, length: int | None = None):
        self.opened.append((key, offset, length))
        with self._local.open_read(key, offset, length) as handle:
            stream = io.BytesIO(handle.read())
        if not self._seekable:
            stream.seekable = lambda: False  # type: ignore[method-assign]
        if self._pipe is not None:
            stream.fileno = lambda: self._pipe  # type: ignore[method-assign]
        return stream


@pytest.mark.parametrize("seekable, pipe", [(True, False), (False, False), (True, True)])
def test_blobs_read_from_streams_without_a_file_descriptor(tmp_path, seekable, pipe):
    local = LocalRepository(tmp_path / "repo")
    local.ensure_repository_id()
    chunks = [random_text(30_000, seed) for seed in range(4)]
    locations = _write_pack(local, chunks)
    read_end, write_end = os.pipe()
    remote = _RemoteLike(local, seekable=seekable, pipe=read_end if pipe else None)
    keyring = Keyring(MASTER)
    pack = locations[0][1].pack
    end = max(location.offset + location.length for _, location in locations)
    with BlobReader(remote, keyring) as reader:
        reader.check_pack(pack, end)
        assert [reader.read(chunk_id, at) for chunk_id, at in locations] == chunks
        with pytest.raises(IntegrityError, match="truncated"):
            reader.check_pack(pack, end + 10_000_000)
    os.close(read_end)
    os.close(write_end)
    if seekable:  # one stream for the whole pack, as for the local file descriptor
        assert remote.opened == [(pack_key(pack), 0, None)]
    else:  # the header from the first stream, then a ranged read for each blob
        ranges = [(pack_key(pack), at.offset, at.length) for _, at in locations]
        assert remote.opened == [(pack_key(pack), 0, None), *ranges]
