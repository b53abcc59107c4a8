"""Reading packs: a chunk by its location, or a pack's own list of what it holds.

See `engines.store.packs` for the format. Every read is authenticated: a blob
opens only under its own chunk id, and a damaged byte anywhere fails. Packs are
read through the destination (`open_read`), never by path.
"""

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from stat import S_ISREG
from typing import BinaryIO

from cryptography.exceptions import InvalidTag

from engines.destinations.base import Destination, StoredObject
from engines.errors import IntegrityError, NotFoundError
from engines.pipeline.crypto import Keyring
from engines.plumbing.streams import read_up_to
from engines.store.blobs import decompress_chunk
from engines.store.layout import NAME_BYTES, PACK_SUFFIX, PACKS_PREFIX, pack_key
from engines.store.packs import (
    ENTRY,
    FOOTER,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_HEADER_SIZE,
    NONCE_SIZE,
    READABLE_VERSIONS,
    TAG_SIZE,
    BlobLocation,
    header_digest,
    pack_cipher,
    trailer_aad,
)

MAX_OPEN_PACKS = 64
_PACK_NAME = re.compile(f"[0-9a-f]{{{2 * NAME_BYTES}}}")


def pack_name_of(key: str) -> str:
    """The pack's name from its key (`files/packs/ab/<name>.pack`)."""
    return key.rpartition("/")[2].removesuffix(PACK_SUFFIX)


class PackKey:
    """The AES-GCM key of one pack, from its authenticated-on-use header."""

    def __init__(self, header: bytes, keyring: Keyring, name: str):
        if not _PACK_NAME.fullmatch(name):
            raise IntegrityError(f"pack {name}: not a pack's name (32 hex digits expected)")
        if len(header) < HEADER_SIZE:
            raise IntegrityError(f"pack {name}: too short to be a pack")
        magic, version, key_id, salt = HEADER.unpack(header[:HEADER_SIZE])
        if magic != MAGIC or version not in READABLE_VERSIONS:
            raise IntegrityError(f"pack {name}: not a Jarvis pack (bad magic or version)")
        size = HEADER_SIZE if version == 1 else MAX_HEADER_SIZE
        if version != 1 and header[HEADER_SIZE:size] != header_digest(header[:HEADER_SIZE]):
            raise IntegrityError(f"pack {name}: its header is damaged (digest does not match)")
        self.header = bytes(header[:size])
        self.header_size = size
        self.version = version
        self.name = name
        self._aead = pack_cipher(keyring.find(key_id.hex()), version, salt)

    def open_blob(self, chunk_id: bytes, sealed: bytes | memoryview) -> bytes:
        try:
            return self._aead.decrypt(
                bytes(sealed[:NONCE_SIZE]), bytes(sealed[NONCE_SIZE:]), self.header + chunk_id
            )
        except InvalidTag:
            raise IntegrityError(
                f"chunk {chunk_id.hex()[:16]} in pack {self.name} failed authentication "
                "(corrupted or tampered)"
            ) from None

    def open_trailer(
        self, sealed: bytes | memoryview, region_digest: bytes
    ) -> list[tuple[bytes, BlobLocation]]:
        aad = trailer_aad(self.header, self.version, self.name, region_digest)
        try:
            plain = self._aead.decrypt(bytes(sealed[:NONCE_SIZE]), bytes(sealed[NONCE_SIZE:]), aad)
        except InvalidTag:
            raise IntegrityError(
                f"pack {self.name}: trailer failed authentication (corrupted or tampered, "
                "or the trailer of another pack)"
            ) from None
        if len(plain) % ENTRY.size:
            raise IntegrityError(f"pack {self.name}: trailer has a partial entry")
        return [
            (chunk_id, BlobLocation(self.name, offset, length, raw))
            for chunk_id, offset, length, raw in ENTRY.iter_unpack(plain)
        ]


@dataclass
class OpenedPack:
    """A pack whose header, trailer and layout were checked; its blobs are not yet read."""

    name: str
    data: bytes
    key: PackKey
    entries: list[tuple[bytes, BlobLocation]]

    def blobs(self) -> Iterator[tuple[bytes, BlobLocation, bytes | IntegrityError]]:
        """Every blob listed, authenticated and decompressed, or the error it failed with."""
        view = memoryview(self.data)
        for chunk_id, location in self.entries:
            sealed = view[location.offset : location.offset + location.length]
            try:
                plain = decompress_chunk(
                    self.key.open_blob(chunk_id, sealed),
                    location.raw_length,
                    f"chunk {chunk_id.hex()[:16]} in pack {self.name}",
                )
            except IntegrityError as exc:
                yield chunk_id, location, exc
            else:
                yield chunk_id, location, plain


def open_pack(data: bytes, keyring: Keyring, name: str) -> OpenedPack:
    """`data` as a pack named `name`: header, trailer (bound to the name and, from version
    2, to the blob region), and blobs that tile the region exactly. IntegrityError when
    any of it fails; KeyNotAvailableError when its key is not configured."""
    key = PackKey(data, keyring, name)
    size = len(data)
    start = key.header_size
    if size < start + FOOTER.size + NONCE_SIZE + TAG_SIZE:
        raise IntegrityError(f"pack {name}: truncated (no trailer)")
    (length,) = FOOTER.unpack_from(data, size - FOOTER.size)
    if length > size - start - FOOTER.size or length < NONCE_SIZE + TAG_SIZE:
        raise IntegrityError(
            f"pack {name}: its last bytes do not end a trailer (bytes added, cut or damaged)"
        )
    trailer_start = size - FOOTER.size - length
    view = memoryview(data)
    digest = hashlib.sha256(view[start:trailer_start]).digest()
    entries = key.open_trailer(view[trailer_start : size - FOOTER.size], digest)
    position = start
    for _, location in sorted(entries, key=lambda entry: entry[1].offset):
        if location.offset != position or location.length < NONCE_SIZE + TAG_SIZE + 1:
            raise IntegrityError(f"pack {name}: its trailer does not match its blobs")
        position += location.length
    if position != trailer_start:
        raise IntegrityError(f"pack {name}: bytes between its blobs and its trailer")
    return OpenedPack(name, data, key, entries)


def read_pack_bytes(repository: Destination, key: str) -> bytes:
    """Every byte of the pack stored under `key`; NotFoundError when it is gone."""
    with repository.open_read(key) as stream:
        return stream.read()


def read_pack(repository: Destination, key: str, keyring: Keyring) -> OpenedPack:
    return open_pack(read_pack_bytes(repository, key), keyring, pack_name_of(key))


def read_trailer(
    repository: Destination, key: str, keyring: Keyring
) -> list[tuple[bytes, BlobLocation]]:
    """The chunks a pack says it holds (authenticated, its layout checked)."""
    return read_pack(repository, key, keyring).entries


@dataclass
class _OpenPack:
    key: PackKey
    stream: BinaryIO | None  # kept open to seek in; None: each read is a ranged open_read
    fd: int | None  # the stream's file descriptor, when it is a real file (local destination)


def _descriptor(stream: BinaryIO) -> int | None:
    """The stream's file descriptor when it reads a regular file (pread works there); not
    the socket a remote destination's response may expose."""
    try:
        fd = stream.fileno()
        return fd if S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


class BlobReader:
    """Reads chunks by location; safe to share between threads.

    Each pack is opened once (`open_read`) and stays open (up to MAX_OPEN_PACKS), so
    consecutive chunks of a pack cost one read each: a pread on its file descriptor
    when the destination's stream is a real file (the local one), else a seek and a
    read, or a ranged `open_read` for a stream that cannot seek.
    """

    def __init__(self, repository: Destination, keyring: Keyring):
        self._repository = repository
        self._keyring = keyring
        self._open: OrderedDict[str, _OpenPack] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, chunk_id: bytes, location: BlobLocation) -> bytes:
        """The chunk's plaintext, authenticated against its id."""
        with self._lock:
            pack = self._pack(location.pack)
            sealed = self._read_at(location.pack, pack, location.offset, location.length)
        key = pack.key
        if len(sealed) != location.length:
            raise IntegrityError(f"pack {location.pack}: truncated (chunk past its end)")
        blob = key.open_blob(chunk_id, sealed)
        return decompress_chunk(blob, location.raw_length, f"chunk in pack {location.pack}")

    def check_pack(self, name: str, end: int) -> None:
        """Open the pack `name` for the reads to come: present, readable, a pack under a
        configured key, and at least `end` bytes long (the end of the last blob wanted).
        NotFoundError, IntegrityError, KeyNotAvailableError or OSError otherwise."""
        with self._lock:
            pack = self._pack(name)
            size = self._size(name, pack)
        if size < end:
            raise IntegrityError(
                f"pack {pack_key(name)} is truncated ({size} bytes, its blobs reach {end})"
            )

    def _pack(self, name: str) -> _OpenPack:
        if name in self._open:
            self._open.move_to_end(name)
            return self._open[name]
        try:
            stream = self._repository.open_read(pack_key(name))
        except NotFoundError:
            raise NotFoundError(
                f"pack {pack_key(name)} is missing from the repository; run "
                "`jarvis-tui verify` on the snapshot to see what is affected"
            ) from None
        fd = _descriptor(stream)
        try:
            if fd is not None:
                header = os.pread(fd, MAX_HEADER_SIZE, 0)
            else:  # the stream stands at offset 0: its first bytes are the header
                header = read_up_to(stream, MAX_HEADER_SIZE)
            key = PackKey(header, self._keyring, name)
            keep = fd is not None or stream.seekable()
        except BaseException:
            stream.close()
            raise
        if not keep:
            stream.close()
        pack = _OpenPack(key, stream if keep else None, fd)
        self._open[name] = pack
        if len(self._open) > MAX_OPEN_PACKS:
            _, old = self._open.popitem(last=False)
            if old.stream is not None:
                old.stream.close()
        return pack

    def _read_at(self, name: str, pack: _OpenPack, offset: int, length: int) -> bytes:
        if pack.fd is not None:
            return os.pread(pack.fd, length, offset)  # no seek: the fast path of a real file
        if pack.stream is not None:
            pack.stream.seek(offset)
            return read_up_to(pack.stream, length)
        with self._repository.open_read(pack_key(name), offset, length) as ranged:
            return read_up_to(ranged, length)

    def _size(self, name: str, pack: _OpenPack) -> int:
        if pack.fd is not None:
            return os.fstat(pack.fd).st_size
        stored = self._repository.stat(pack_key(name))
        if stored is None:
            raise NotFoundError(f"pack {pack_key(name)} is missing from the repository")
        return stored.size

    def close(self) -> None:
        with self._lock:
            while self._open:
                _, pack = self._open.popitem()
                if pack.stream is not None:
                    pack.stream.close()

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_pack_files(repository: Destination) -> Iterator[StoredObject]:
    """Every object stored as a pack (`files/packs/<folder>/<name>.pack`), in key order;
    one whose name is not a pack's fails when it is read, as damage."""
    for stored in repository.list(PACKS_PREFIX):
        folder, _, file_name = stored.key[len(PACKS_PREFIX) :].partition("/")
        if folder and file_name.endswith(PACK_SUFFIX) and "/" not in file_name:
            yield stored
