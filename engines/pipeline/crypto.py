"""Master keys and the streaming AES-256-GCM container artifacts are stored in.

Layout: a header, then records. Each record is a frame (kind, plaintext
length) followed by the AES-GCM ciphertext and tag of that plaintext:

    header | DATA ... | LAST_DATA | METADATA | end of file

Every record's nonce holds its index and kind, and its associated data holds
the whole header and its frame, so a flipped bit, a dropped or reordered
record, a record taken from another artifact and a cut at any point are all
refused. The key comes from HKDF over the master key and the header's salt,
with an HKDF `info` naming the purpose and format version.

Version 2 headers also carry the artifact's identity (repository id, source,
set id, name) as canonical JSON, so it is authenticated with every record: a
reader told which artifact it was asked for refuses any other one before
handing out a byte. A short digest ends the header so that damage to it (a key
id turned into one nobody has) reads as damage, not as a missing key.
Version 1 (no identity, one HKDF `info` for everything) is still read.
"""

import hashlib
import hmac
import io
import json
import os
import secrets
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engines.errors import IntegrityError, KeyNotAvailableError
from engines.plumbing.streams import read_up_to

MAGIC = b"\x89JARVIS\n"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
DEFAULT_CHUNK_SIZE = 1024 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
MAX_METADATA_SIZE = 16 * 1024 * 1024
TAG_SIZE = 16
SALT_SIZE = 32

_HEADER = struct.Struct(">8sBB8s32sI")  # magic, version, codec id, key id, salt, chunk size
_IDENTITY_LENGTH = struct.Struct(">H")  # version 2: length of the identity that follows
_FRAME = struct.Struct(">BI")  # record kind, plaintext length
_NONCE = struct.Struct(">QI")  # record index, record kind
HEADER_SIZE = _HEADER.size  # the fixed part; version 2 adds identity and digest
HEADER_DIGEST_SIZE = 8
MAX_IDENTITY_SIZE = 4096

DATA, LAST_DATA, METADATA = 0, 1, 2
_HKDF_INFO_V1 = b"jarvis artifact v1 aes-256-gcm"
# One HKDF `info` per purpose, each versioned: a key derived for one purpose is
# never the key of another, whatever salt a (writable) header supplies.
CONTAINER_KEY_V2 = "artifact container key v2 aes-256-gcm"
PACK_KEY_V2 = "files store pack key v2 aes-256-gcm"
CHUNK_ID_KEY_V2 = "files store chunk id key v2 hmac-sha256"
GEAR_TABLE_V2 = "files store gear table v2"


class MasterKey:
    """The 32-byte BACKUP_ENCRYPTION_KEY; its repr and str show only the key id."""

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes):
        if len(secret) != 32:
            raise ValueError(f"expected 32 key bytes, got {len(secret)}")
        self._secret = bytes(secret)
        digest = hmac.new(self._secret, b"jarvis-key-id", hashlib.sha256).hexdigest()
        self.key_id = digest[:16]

    @classmethod
    def from_hex(cls, text: str) -> "MasterKey":
        text = text.strip()
        try:
            secret = bytes.fromhex(text) if len(text) == 64 else None
        except ValueError:
            secret = None
        if secret is None:
            detail = f"{len(text)}" if len(text) != 64 else "64 characters that are not all hex"
            raise ValueError(f"expected 64 hex characters, got {detail}")
        return cls(secret)

    def derive_artifact_key(self, salt: bytes) -> bytes:
        """The version 1 derivation (one `info` for every purpose), kept for what it sealed."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO_V1)
        return hkdf.derive(self._secret)

    def derive_key(self, purpose: str, salt: bytes) -> bytes:
        """A 32-byte key for `purpose` (one of the `*_V2` names above)."""
        info = f"jarvis {purpose}".encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info)
        return hkdf.derive(self._secret)

    def container_key(self, version: int, salt: bytes) -> bytes:
        if version == 1:
            return self.derive_artifact_key(salt)
        return self.derive_key(CONTAINER_KEY_V2, salt)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __reduce__(self):
        raise TypeError("MasterKey cannot be pickled")


def generate_key_hex() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Keyring:
    """The current key seals new artifacts; previous keys still open old ones."""

    current: MasterKey
    previous: tuple[MasterKey, ...] = ()

    def find(self, key_id: str) -> MasterKey:
        for key in (self.current, *self.previous):
            if key.key_id == key_id:
                return key
        raise KeyNotAvailableError(key_id)


def encode_identity(identity: Mapping[str, str]) -> bytes:
    """Canonical JSON, the form bound into a version 2 header."""
    return json.dumps(dict(identity), sort_keys=True, separators=(",", ":")).encode()


def describe_identity(identity: Mapping[str, str] | None) -> str:
    if not identity:
        return "no identity (a version 1 container)" if identity is None else "no identity"
    return ", ".join(f"{key} {value}" for key, value in sorted(identity.items()))


@dataclass(frozen=True)
class ContainerHeader:
    codec_id: int
    key_id: str
    salt: bytes
    chunk_size: int
    version: int = FORMAT_VERSION
    identity: dict[str, str] | None = None  # version 2 only

    def to_bytes(self) -> bytes:
        key_id = bytes.fromhex(self.key_id)
        fixed = _HEADER.pack(MAGIC, self.version, self.codec_id, key_id, self.salt, self.chunk_size)
        if self.version == 1:
            return fixed
        identity = encode_identity(self.identity or {})
        if len(identity) > MAX_IDENTITY_SIZE:
            raise ValueError(f"identity is {len(identity)} bytes, over {MAX_IDENTITY_SIZE}")
        body = fixed + _IDENTITY_LENGTH.pack(len(identity)) + identity
        return body + hashlib.sha256(body).digest()[:HEADER_DIGEST_SIZE]

    @classmethod
    def parse(cls, raw: bytes, name: str) -> "ContainerHeader":
        """The fixed part of a header; `read_header` reads a whole one from a stream."""
        if len(raw) < HEADER_SIZE:
            raise IntegrityError(f"{name}: too short to be an encrypted artifact")
        magic, version, codec_id, key_id, salt, chunk_size = _HEADER.unpack(raw[:HEADER_SIZE])
        if magic != MAGIC:
            raise IntegrityError(f"{name}: not a Jarvis encrypted artifact (bad magic bytes)")
        if version not in READABLE_VERSIONS:
            raise IntegrityError(f"{name}: unsupported container format version {version}")
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise IntegrityError(f"{name}: header names an invalid chunk size (corrupted)")
        return cls(codec_id, key_id.hex(), salt, chunk_size, version)


def read_header(source: BinaryIO, name: str) -> tuple[ContainerHeader, bytes]:
    """The header at the start of `source` and its bytes (the records' associated data).

    A version 2 header whose digest does not match is damage, refused before its key
    id is looked up.
    """
    raw = read_up_to(source, HEADER_SIZE)
    header = ContainerHeader.parse(raw, name)
    if header.version == 1:
        return header, raw
    length_bytes = read_up_to(source, _IDENTITY_LENGTH.size)
    (length,) = _IDENTITY_LENGTH.unpack(length_bytes.rjust(_IDENTITY_LENGTH.size, b"\0"))
    identity = read_up_to(source, min(length, MAX_IDENTITY_SIZE))
    digest = read_up_to(source, HEADER_DIGEST_SIZE)
    body = raw + length_bytes + identity
    if (
        len(length_bytes) < _IDENTITY_LENGTH.size
        or len(identity) != length
        or len(digest) < HEADER_DIGEST_SIZE
    ):
        raise IntegrityError(f"{name}: truncated inside the header")
    if not hmac.compare_digest(digest, hashlib.sha256(body).digest()[:HEADER_DIGEST_SIZE]):
        raise IntegrityError(f"{name}: the header is damaged (its digest does not match)")
    try:
        claimed = json.loads(identity)
    except (UnicodeDecodeError, json.JSONDecodeError):
        claimed = None
    if not isinstance(claimed, dict) or not all(isinstance(v, str) for v in claimed.values()):
        raise IntegrityError(f"{name}: the header's identity is not a JSON object of strings")
    return replace(header, identity=claimed), body + digest


def identity_mismatch(
    expected: Mapping[str, str], claimed: Mapping[str, str] | None, name: str
) -> IntegrityError | None:
    """The error for a container that is not the one asked for, or None when it is."""
    if claimed is not None and all(claimed.get(k) == v for k, v in expected.items()):
        return None
    return IntegrityError(
        f"{name}: this is not the artifact asked for: expected {describe_identity(expected)}; "
        f"the file claims {describe_identity(claimed)}; it was swapped or copied from "
        "elsewhere: restore the right file from another copy or pick the backup it belongs to"
    )


def _nonce(index: int, kind: int) -> bytes:
    return _NONCE.pack(index, kind)


class ContainerWriter:
    """Seal a byte stream into `sink` chunk by chunk; call `finish` exactly once."""

    def __init__(
        self,
        sink: BinaryIO,
        key: MasterKey,
        codec_id: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        identity: Mapping[str, str] | None = None,
        version: int = FORMAT_VERSION,
    ):
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be 1..{MAX_CHUNK_SIZE}, got {chunk_size}")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"container format version must be one of {READABLE_VERSIONS}")
        salt = os.urandom(SALT_SIZE)
        # Version 1 is written only to test that what it sealed is still read.
        self.header = ContainerHeader(
            codec_id, key.key_id, salt, chunk_size, version,
            dict(identity or {}) if version >= 2 else None,
        )  # fmt: skip
        self._header_bytes = self.header.to_bytes()
        self.header_size = len(self._header_bytes)
        # The key is unique to this artifact (random salt), so a counter nonce never
        # repeats under one key: the index is unique within the artifact and no other
        # artifact uses this key.
        self._aead = AESGCM(key.container_key(self.header.version, salt))
        self._sink = sink
        self._buffer = bytearray()
        self.chunk_count = 0
        self.plain_size = 0
        sink.write(self._header_bytes)

    def write(self, data: bytes) -> None:
        self.plain_size += len(data)
        size = self.header.chunk_size
        # Hold up to one full chunk back: only `finish` knows which chunk is last.
        if len(self._buffer) + len(data) <= size:
            self._buffer += data
            return
        view = memoryview(data)
        if self._buffer:
            # More data follows, so the held-back chunk, topped up, is not the last.
            fill = size - len(self._buffer)
            self._buffer += view[:fill]
            self._seal(DATA, self._buffer)
            view = view[fill:]
        # Full chunks are sealed straight from `data`; only the tail is copied.
        start = 0
        while len(view) - start > size:
            self._seal(DATA, view[start : start + size])
            start += size
        self._buffer = bytearray(view[start:])

    def finish(self, metadata: bytes) -> None:
        if len(metadata) > MAX_METADATA_SIZE:
            raise ValueError(f"metadata is {len(metadata)} bytes, over {MAX_METADATA_SIZE}")
        self._seal(LAST_DATA, bytes(self._buffer))
        self._buffer.clear()
        self._seal(METADATA, metadata)

    def _seal(self, kind: int, plaintext: bytes | memoryview) -> None:
        frame = _FRAME.pack(kind, len(plaintext))
        sealed = self._aead.encrypt(
            _nonce(self.chunk_count, kind), plaintext, self._header_bytes + frame
        )
        self._sink.write(frame)
        self._sink.write(sealed)
        self.chunk_count += 1


class ContainerReader:
    """Open a container from `source`; the header is authenticated on construction.

    `name` is how errors refer to the artifact. Data chunks come from
    `data_chunks()`; `metadata` is set once they are exhausted and the end of
    file was checked. `chunk_count` counts the records authenticated so far.

    `expected_key_id` (the key the catalog recorded) refuses a container sealed
    under any other key, retired ones included, before a key is looked up.
    `expected_identity` refuses a version 2 container whose authenticated
    identity differs in any of the given fields, before any data is handed out;
    version 1 containers carry none, their callers check them otherwise.
    """

    def __init__(
        self,
        source: BinaryIO,
        keyring: Keyring,
        name: str,
        *,
        expected_key_id: str | None = None,
        expected_identity: Mapping[str, str] | None = None,
    ):
        self._source = source
        self._name = name
        self.header, self._header_bytes = read_header(source, name)
        self.header_size = len(self._header_bytes)
        if expected_key_id is not None and self.header.key_id != expected_key_id:
            previous = {key.key_id for key in keyring.previous}
            if self.header.key_id == keyring.current.key_id and expected_key_id in previous:
                raise IntegrityError(
                    f"{name}: sealed under the current key id {self.header.key_id}, but the "
                    f"catalog recorded the previous key id {expected_key_id}, as an interrupted "
                    "rekey leaves it; run `jarvis-tui rekey` to finish (if no rekey ran, it was "
                    "damaged or forged: restore it from another copy)"
                )
            raise IntegrityError(
                f"{name}: sealed under key id {self.header.key_id}, but the catalog recorded "
                f"key id {expected_key_id} for it (damaged, or forged with another key); "
                "restore it from another copy"
            )
        key = keyring.find(self.header.key_id)
        self._aead = AESGCM(key.container_key(self.header.version, self.header.salt))
        self.chunk_count = 0
        self.metadata: bytes | None = None
        # Authenticates the header (and its identity) before anything is compared.
        self._first = self._next_record(data_expected=True)
        if expected_identity and self.header.version >= 2:
            error = identity_mismatch(expected_identity, self.header.identity, name)
            if error is not None:
                raise error

    def data_chunks(self) -> Iterator[bytes]:
        kind, plaintext = self._first
        while True:
            if kind == METADATA:
                self._finish(plaintext)
                return
            yield plaintext
            kind, plaintext = self._next_record(data_expected=kind == DATA)

    def _next_record(self, data_expected: bool) -> tuple[int, bytes]:
        index = self.chunk_count
        frame = read_up_to(self._source, _FRAME.size)
        if not frame:
            if index == 0:
                raise IntegrityError(f"{self._name}: truncated after the header (no chunks)")
            what = "last chunk missing" if data_expected else "metadata record missing"
            raise IntegrityError(f"{self._name}: truncated after chunk {index - 1} ({what})")
        if len(frame) < _FRAME.size:
            raise IntegrityError(f"{self._name}: truncated inside chunk {index}")
        kind, length = _FRAME.unpack(frame)
        self._check_frame(index, kind, length, data_expected)
        sealed = read_up_to(self._source, length + TAG_SIZE)
        if len(sealed) < length + TAG_SIZE:
            raise IntegrityError(f"{self._name}: truncated inside chunk {index}")
        try:
            plaintext = self._aead.decrypt(_nonce(index, kind), sealed, self._header_bytes + frame)
        except InvalidTag:
            what = f"chunk {index}" if kind != METADATA else f"metadata record (chunk {index})"
            raise IntegrityError(
                f"{self._name}: {what} failed authentication (corrupted or tampered)"
            ) from None
        self.chunk_count += 1
        return kind, plaintext

    def _check_frame(self, index: int, kind: int, length: int, data_expected: bool) -> None:
        size = self.header.chunk_size
        valid = (
            (kind == DATA and data_expected and length == size)
            or (kind == LAST_DATA and data_expected and length <= size)
            or (kind == METADATA and not data_expected and length <= MAX_METADATA_SIZE)
        )
        if not valid:
            raise IntegrityError(
                f"{self._name}: chunk {index} has an invalid frame (corrupted or tampered)"
            )

    def _finish(self, metadata: bytes) -> None:
        if self._source.read(1):
            raise IntegrityError(f"{self._name}: unexpected data after the metadata record")
        self.metadata = metadata


def read_metadata_record(
    source: BinaryIO,
    keyring: Keyring,
    name: str,
) -> tuple[ContainerHeader, bytes]:
    """The header and the sealed metadata record of a seekable container, found by
    stepping over the data chunks' frames: what an artifact says it is, authenticated
    (with the header) without reading its data. The data chunks are not checked here."""
    header, header_bytes = read_header(source, name)
    aead = AESGCM(keyring.find(header.key_id).container_key(header.version, header.salt))
    index, data_expected = 0, True
    while True:
        frame = read_up_to(source, _FRAME.size)
        if len(frame) < _FRAME.size:
            raise IntegrityError(f"{name}: truncated before its metadata record")
        kind, length = _FRAME.unpack(frame)
        valid = (
            (kind == DATA and data_expected and length == header.chunk_size)
            or (kind == LAST_DATA and data_expected and length <= header.chunk_size)
            or (kind == METADATA and not data_expected and length <= MAX_METADATA_SIZE)
        )
        if not valid:
            raise IntegrityError(f"{name}: chunk {index} has an invalid frame (corrupted)")
        if kind == METADATA:
            break
        source.seek(length + TAG_SIZE, io.SEEK_CUR)
        index, data_expected = index + 1, kind == DATA
    sealed = read_up_to(source, length + TAG_SIZE)
    try:
        metadata = aead.decrypt(_nonce(index, kind), sealed, header_bytes + frame)
    except InvalidTag:
        raise IntegrityError(
            f"{name}: metadata record (chunk {index}) failed authentication (corrupted or tampered)"
        ) from None
    if source.read(1):
        raise IntegrityError(f"{name}: unexpected data after the metadata record")
    return header, metadata


class DecryptedStream(io.RawIOBase):
    """The authenticated data chunks of a container as a readable byte stream.

    Reading to end of file also checks the metadata record and the end of file.
    """

    def __init__(self, reader: ContainerReader):
        self.container = reader
        self._chunks = reader.data_chunks()
        self._current = memoryview(b"")
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
            self.size += len(chunk)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count
