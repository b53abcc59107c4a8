"""Reading packs: a chunk by its location, or a pack's own list of what it holds.

See `engines.store.packs` for the format. Every read is authenticated: a blob
opens only under its own chunk id, and a damaged byte anywhere fails.
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engines.crypto import Keyring
from engines.destinations.local import LocalRepository
from engines.errors import IntegrityError, NotFoundError
from engines.store.blobs import decompress_chunk
from engines.store.layout import PACK_SUFFIX, PACKS_PREFIX, pack_key
from engines.store.packs import (
    ENTRY,
    FOOTER,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    NONCE_SIZE,
    TAG_SIZE,
    TRAILER_AAD,
    VERSION,
    BlobLocation,
)

MAX_OPEN_PACKS = 64


def pack_name_of(path: Path) -> str:
    return path.name.removesuffix(PACK_SUFFIX)


class PackKey:
    """The AES-GCM key of one pack, from its authenticated-on-use header."""

    def __init__(self, header: bytes, keyring: Keyring, name: str):
        if len(header) < HEADER_SIZE:
            raise IntegrityError(f"pack {name}: too short to be a pack")
        magic, version, key_id, salt = HEADER.unpack(header[:HEADER_SIZE])
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
                sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], self.header + TRAILER_AAD
            )
        except InvalidTag:
            raise IntegrityError(
                f"pack {self.name}: trailer failed authentication (corrupted or tampered)"
            ) from None
        if len(plain) % ENTRY.size:
            raise IntegrityError(f"pack {self.name}: trailer has a partial entry")
        return [
            (chunk_id, BlobLocation(self.name, offset, length, raw))
            for chunk_id, offset, length, raw in ENTRY.iter_unpack(plain)
        ]


def read_trailer(path: Path, keyring: Keyring) -> list[tuple[bytes, BlobLocation]]:
    """The chunks a pack says it holds (authenticated)."""
    name = pack_name_of(path)
    with path.open("rb") as handle:
        header = handle.read(HEADER_SIZE)
        pack_key_ = PackKey(header, keyring, name)
        size = handle.seek(0, os.SEEK_END)
        if size < HEADER_SIZE + FOOTER.size:
            raise IntegrityError(f"pack {name}: truncated (no trailer)")
        handle.seek(size - FOOTER.size)
        (length,) = FOOTER.unpack(handle.read(FOOTER.size))
        if length > size - HEADER_SIZE - FOOTER.size or length < NONCE_SIZE + TAG_SIZE:
            raise IntegrityError(f"pack {name}: truncated or damaged trailer")
        handle.seek(size - FOOTER.size - length)
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
