"""Pack files: many compressed chunks, each sealed with AES-256-GCM, in one object.

    header  | blob ... | trailer | trailer length (4 bytes)
    header  = magic, version, key id, salt (the run key is HKDF(master key, salt))
    blob    = nonce (12) + AES-GCM(codec byte + payload), associated data header + chunk id
    trailer = nonce (12) + AES-GCM(the pack's own list of chunk id, offset, length, size)

Binding the chunk id into each blob's associated data means a blob can only
ever be opened as the chunk it was written for. Blobs are sealed on worker
threads before it is known which pack they land in, so every pack of one run
shares the run's salt and each blob carries a random nonce. The trailer lets
`prune` and `verify` read a pack that no index lists. Packs are written to a
temporary name, fsynced and renamed: a pack either exists whole or not at all.
"""

import contextlib
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engines.crypto import SALT_SIZE, Keyring, MasterKey
from engines.destinations.local import LocalRepository
from engines.errors import IntegrityError, NotFoundError
from engines.fsutil import atomic_output, ensure_private_dir
from engines.store.blobs import decompress_chunk
from engines.store.keys import ID_SIZE
from engines.store.layout import PACK_SUFFIX, PACKS_PREFIX, new_object_name, pack_key

MAGIC = b"JARVPACK"
VERSION = 1
TARGET_PACK_SIZE = 8 * 1024 * 1024
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER = struct.Struct(">8sB8s32s")
_ENTRY = struct.Struct(f">{ID_SIZE}sIII")  # chunk id, offset, length, plain size
_FOOTER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
_TRAILER_AAD = b"trailer"
MAX_OPEN_PACKS = 64


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
        self.header = _HEADER.pack(MAGIC, VERSION, bytes.fromhex(key.key_id), salt)
        self._aead = AESGCM(key.derive_artifact_key(salt))

    def seal(self, chunk_id: bytes, compressed: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, compressed, self.header + chunk_id)

    def seal_trailer(self, entries: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, entries, self.header + _TRAILER_AAD)


class PackWriter:
    """Appends sealed blobs to packs of about `target_size`; `finish` closes the last one.

    `locations` lists every blob written, once its pack is complete on disk.
    """

    def __init__(
        self,
        repository: LocalRepository,
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
        self._entries.append((chunk_id, self._size, len(sealed), raw_length))
        self._size += len(sealed)
        if self._size >= self._target_size:
            self._close_pack()

    def finish(self) -> None:
        if self._handle is not None:
            self._close_pack()

    def abort(self) -> None:
        """Drop the pack being written (its temporary file is removed)."""
        if self._stack is not None:
            stack, self._stack, self._handle = self._stack, None, None
            with contextlib.suppress(Exception):
                stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def _open(self) -> None:
        self._name = new_object_name()
        path = self._repository.path_for(pack_key(self._name))
        ensure_private_dir(path.parent)
        self._stack = contextlib.ExitStack()
        self._handle = self._stack.enter_context(atomic_output(path))
        self._handle.write(self._sealer.header)
        self._size = HEADER_SIZE
        self._entries = []

    def _close_pack(self) -> None:
        assert self._handle is not None and self._stack is not None
        trailer = self._sealer.seal_trailer(b"".join(_ENTRY.pack(*e) for e in self._entries))
        self._handle.write(trailer)
        self._handle.write(_FOOTER.pack(len(trailer)))
        stack, self._stack, self._handle = self._stack, None, None
        stack.close()  # fsync and rename into place
        self.packs_written += 1
        self.bytes_written += self._size + len(trailer) + _FOOTER.size
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


def pack_name_of(path: Path) -> str:
    return path.name.removesuffix(PACK_SUFFIX)


class PackKey:
    """The AES-GCM key of one pack, from its authenticated-on-use header."""

    def __init__(self, header: bytes, keyring: Keyring, name: str):
        if len(header) < HEADER_SIZE:
            raise IntegrityError(f"pack {name}: too short to be a pack")
        magic, version, key_id, salt = _HEADER.unpack(header[:HEADER_SIZE])
        if magic != MAGIC or version != VERSION:
            raise IntegrityError(f"pack {name}: not a Jarvis pack (bad magic or version)")
        self.header = header[:HEADER_SIZE]
        self.name = name
        self._aead = AESGCM(keyring.find(key_id.hex()).derive_artifact_key(salt))

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

    def open_trailer(self, sealed: bytes) -> list[tuple[bytes, BlobLocation]]:
        try:
            plain = self._aead.decrypt(
                sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], self.header + _TRAILER_AAD
            )
        except InvalidTag:
            raise IntegrityError(
                f"pack {self.name}: trailer failed authentication (corrupted or tampered)"
            ) from None
        if len(plain) % _ENTRY.size:
            raise IntegrityError(f"pack {self.name}: trailer has a partial entry")
        return [
            (chunk_id, BlobLocation(self.name, offset, length, raw))
            for chunk_id, offset, length, raw in _ENTRY.iter_unpack(plain)
        ]


def read_trailer(path: Path, keyring: Keyring) -> list[tuple[bytes, BlobLocation]]:
    """The chunks a pack says it holds (authenticated)."""
    name = pack_name_of(path)
    with path.open("rb") as handle:
        header = handle.read(HEADER_SIZE)
        pack_key_ = PackKey(header, keyring, name)
        size = handle.seek(0, os.SEEK_END)
        if size < HEADER_SIZE + _FOOTER.size:
            raise IntegrityError(f"pack {name}: truncated (no trailer)")
        handle.seek(size - _FOOTER.size)
        (length,) = _FOOTER.unpack(handle.read(_FOOTER.size))
        if length > size - HEADER_SIZE - _FOOTER.size or length < NONCE_SIZE + TAG_SIZE:
            raise IntegrityError(f"pack {name}: truncated or damaged trailer")
        handle.seek(size - _FOOTER.size - length)
        return pack_key_.open_trailer(handle.read(length))


class BlobReader:
    """Reads chunks by location; safe to share between threads.

    Pack files stay open (up to MAX_OPEN_PACKS) so consecutive chunks of a
    pack cost one pread each.
    """

    def __init__(self, repository: LocalRepository, keyring: Keyring):
        self._repository = repository
        self._keyring = keyring
        self._open: OrderedDict[str, tuple[int, PackKey]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, chunk_id: bytes, location: BlobLocation) -> bytes:
        """The chunk's plaintext, authenticated against its id."""
        with self._lock:
            fd, key = self._pack(location.pack)
            sealed = os.pread(fd, location.length, location.offset)
        if len(sealed) != location.length:
            raise IntegrityError(f"pack {location.pack}: truncated (chunk past its end)")
        blob = key.open_blob(chunk_id, sealed)
        return decompress_chunk(blob, location.raw_length, f"chunk in pack {location.pack}")

    def _pack(self, name: str) -> tuple[int, PackKey]:
        if name in self._open:
            self._open.move_to_end(name)
            return self._open[name]
        path = self._repository.path_for(pack_key(name))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFoundError(
                f"pack {pack_key(name)} is missing from the repository; run "
                "`jarvis-tui verify` on the snapshot to see what is affected"
            ) from None
        try:
            key = PackKey(os.pread(fd, HEADER_SIZE, 0), self._keyring, name)
        except BaseException:
            os.close(fd)
            raise
        self._open[name] = (fd, key)
        if len(self._open) > MAX_OPEN_PACKS:
            _, (old_fd, _) = self._open.popitem(last=False)
            os.close(old_fd)
        return fd, key

    def close(self) -> None:
        with self._lock:
            while self._open:
                _, (fd, _) = self._open.popitem()
                os.close(fd)

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_pack_files(repository: LocalRepository) -> Iterator[Path]:
    root = repository.path_for(PACKS_PREFIX.rstrip("/"))
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_dir():
            yield from sorted(p for p in folder.iterdir() if p.name.endswith(PACK_SUFFIX))
