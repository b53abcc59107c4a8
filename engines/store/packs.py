"""Pack files: many compressed chunks, each sealed with AES-256-GCM, in one object.

    header  | blob ... | trailer | trailer length (4 bytes)
    header  = magic, version, key id, salt (the run key is HKDF(master key, salt)),
              and from version 2 a digest of those, so a damaged key id reads as damage
    blob    = nonce (12) + AES-GCM(codec byte + payload), associated data header + chunk id
    trailer = nonce (12) + AES-GCM(the pack's own list of chunk id, offset, length, size)

Binding the chunk id into each blob's associated data means a blob can only
ever be opened as the chunk it was written for. Blobs are sealed on worker
threads before it is known which pack they land in, so every pack of one run
shares the run's salt and each blob carries a random nonce. The trailer lets
`prune` and `verify` read a pack that no index lists; since version 2 its
associated data also holds the pack's name and the SHA-256 of its blob region,
so a trailer authenticates on its own pack only, and only over the very bytes
it was written with (version 1 packs, without that binding, are still read).
The blobs the trailer lists tile the region exactly, so a byte added, removed
or changed anywhere in a pack fails a full read. Packs are written through the
destination's `open_write`: a pack either exists whole or not at all.
"""

import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engines.destinations.base import Destination
from engines.pipeline.crypto import PACK_KEY_V2, SALT_SIZE, MasterKey
from engines.store.keys import ID_SIZE
from engines.store.layout import new_object_name, pack_key

MAGIC = b"JARVPACK"
VERSION = 2
READABLE_VERSIONS = (1, 2)
TARGET_PACK_SIZE = 8 * 1024 * 1024
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER = struct.Struct(">8sB8s32s")
ENTRY = struct.Struct(f">{ID_SIZE}sIII")  # chunk id, offset, length, plain size
FOOTER = struct.Struct(">I")
HEADER_SIZE = HEADER.size  # version 1; version 2 adds HEADER_DIGEST_SIZE
HEADER_DIGEST_SIZE = 8
MAX_HEADER_SIZE = HEADER_SIZE + HEADER_DIGEST_SIZE
TRAILER_AAD = b"trailer"


def header_digest(fixed: bytes) -> bytes:
    return hashlib.sha256(fixed).digest()[:HEADER_DIGEST_SIZE]


def pack_cipher(key: MasterKey, version: int, salt: bytes) -> AESGCM:
    if version == 1:
        return AESGCM(key.derive_artifact_key(salt))
    return AESGCM(key.derive_key(PACK_KEY_V2, salt))


def trailer_aad(header: bytes, version: int, name: str, region_digest: bytes) -> bytes:
    """What a trailer is authenticated with: version 2 binds its pack's name and blobs."""
    if version == 1:
        return header + TRAILER_AAD
    return header + TRAILER_AAD + bytes.fromhex(name) + region_digest


@dataclass(frozen=True)
class BlobLocation:
    pack: str  # the pack's name
    offset: int
    length: int
    raw_length: int


class PackSealer:
    """Seals compressed chunks under one run key; safe to share between threads."""

    def __init__(self, key: MasterKey):
        salt = os.urandom(SALT_SIZE)
        fixed = HEADER.pack(MAGIC, VERSION, bytes.fromhex(key.key_id), salt)
        self.header = fixed + header_digest(fixed)
        self._aead = pack_cipher(key, VERSION, salt)

    def seal(self, chunk_id: bytes, compressed: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, compressed, self.header + chunk_id)

    def seal_trailer(self, entries: bytes, name: str, region_digest: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        aad = trailer_aad(self.header, VERSION, name, region_digest)
        return nonce + self._aead.encrypt(nonce, entries, aad)


class PackWriter:
    """Appends sealed blobs to packs of about `target_size`; `finish` closes the last one.

    `locations` lists every blob written, once its pack is complete on disk.
    """

    def __init__(
        self,
        repository: Destination,
        sealer: PackSealer,
        target_size: int = TARGET_PACK_SIZE,
    ):
        self._repository = repository
        self._sealer = sealer
        self._target_size = target_size
        self._stack: contextlib.ExitStack | None = None
        self._handle: BinaryIO | None = None
        self._name = ""
        self._size = 0
        self._entries: list[tuple[bytes, int, int, int]] = []
        self._region = hashlib.sha256()
        self.locations: list[tuple[bytes, BlobLocation]] = []
        self.packs_written = 0
        self.bytes_written = 0

    def seal(self, chunk_id: bytes, compressed: bytes) -> bytes:
        return self._sealer.seal(chunk_id, compressed)

    def add(self, chunk_id: bytes, sealed: bytes, raw_length: int) -> None:
        if self._handle is None:
            self._open()
        assert self._handle is not None
        self._handle.write(sealed)
        self._region.update(sealed)
        self._entries.append((chunk_id, self._size, len(sealed), raw_length))
        self._size += len(sealed)
        if self._size >= self._target_size:
            self._close_pack()

    def finish(self) -> None:
        if self._handle is not None:
            self._close_pack()

    def abort(self) -> None:
        """Drop the pack being written (the destination keeps nothing of it)."""
        if self._stack is not None:
            stack, self._stack, self._handle = self._stack, None, None
            with contextlib.suppress(Exception):
                stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def _open(self) -> None:
        self._name = new_object_name()
        self._stack = contextlib.ExitStack()
        self._handle = self._stack.enter_context(self._repository.open_write(pack_key(self._name)))
        self._handle.write(self._sealer.header)
        self._size = len(self._sealer.header)
        self._entries = []
        self._region = hashlib.sha256()

    def _close_pack(self) -> None:
        assert self._handle is not None and self._stack is not None
        entries = b"".join(ENTRY.pack(*e) for e in self._entries)
        trailer = self._sealer.seal_trailer(entries, self._name, self._region.digest())
        self._handle.write(trailer)
        self._handle.write(FOOTER.pack(len(trailer)))
        stack, self._stack, self._handle = self._stack, None, None
        stack.close()  # complete and durable under its key (local: fsync and rename)
        self.packs_written += 1
        self.bytes_written += self._size + len(trailer) + FOOTER.size
        self.locations.extend(
            (chunk_id, BlobLocation(self._name, offset, length, raw))
            for chunk_id, offset, length, raw in self._entries
        )
        self._entries = []

    def __enter__(self) -> "PackWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
