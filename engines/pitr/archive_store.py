"""Archived files in a destination: sealed whole through the artifact pipeline, looked
up by key, and read back authenticated against the identity asked for.

Shared by wal-push (is it there already, with which content?), wal-fetch and pitr
check. Every object is small (a segment, 16 MiB by default), so reads take it whole
and authenticate every chunk before a byte is used.
"""

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from engines.destinations import Destination
from engines.errors import IntegrityError
from engines.pipeline.artifacts import SealedStream, sealed_metadata
from engines.pipeline.compression import codec_for_id, open_decompressor
from engines.pipeline.crypto import ContainerReader, DecryptedStream, Keyring
from engines.repository.stored import write_stored

READ_LIMIT = 1 << 30  # no WAL file is larger than the largest segment size


@dataclass(frozen=True)
class Fetched:
    key: str
    data: bytes
    identity: dict[str, str]


def find_key(destination: Destination, keys: list[str]) -> str | None:
    for key in keys:
        if destination.stat(key) is not None:
            return key
    return None


def sealed_identity(destination: Destination, key: str, keyring: Keyring) -> dict[str, str]:
    """The identity of the object under `key`, authenticated with its first chunk (cheap:
    enough to compare content hashes without reading it all)."""
    with destination.open_read(key) as handle:
        reader = ContainerReader(handle, keyring, key)
        return dict(reader.header.identity or {})


def read_whole(
    destination: Destination, key: str, keyring: Keyring, expected: dict[str, str]
) -> Fetched:
    """The object's original bytes, every chunk authenticated, its sealed identity equal to
    `expected` in every field given, and its content hashing to the sealed sha256."""
    with destination.open_read(key) as handle:
        reader = ContainerReader(handle, keyring, key, expected_identity=expected)
        compressed = DecryptedStream(reader).read()
        identity = dict(reader.header.identity or {})
        limit = sealed_metadata(reader, key).get("plain_size")
    if not isinstance(limit, int) or not 0 <= limit <= READ_LIMIT:
        raise IntegrityError(f"{key}: its sealed metadata records no usable plain size")
    codec = codec_for_id(reader.header.codec_id)
    if codec is None:
        raise IntegrityError(f"{key}: unknown codec id {reader.header.codec_id}")
    with open_decompressor(codec, io.BytesIO(compressed), key) as plain:
        data = plain.read(limit + 1)
        if len(data) == limit:
            data += plain.read(1)  # the end of the stream checks its own trailer
    if len(data) != limit:
        raise IntegrityError(f"{key}: decompresses to {len(data)} bytes, not the {limit} sealed")
    if hashlib.sha256(data).hexdigest() != identity.get("sha256"):
        raise IntegrityError(
            f"{key}: its content does not hash to the sha256 sealed with it (damaged or "
            "forged); fetch it from another copy"
        )
    return Fetched(key, data, identity)


def seal_into(
    destination: Destination,
    key: str,
    data: bytes,
    keyring: Keyring,
    identity: dict[str, str],
    metadata: dict[str, Any],
    codec: str,
    level: int,
) -> SealedStream:
    """`data` sealed under `key` in one atomic write (no sidecar: the sealed metadata at
    the container's end is the record)."""
    return write_stored(
        destination, key, [data], keyring, metadata,
        sidecar=False, codec=codec, level=level, threads=1, identity=identity,
    )  # fmt: skip
