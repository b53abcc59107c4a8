"""Sealed objects in a destination: written through its `open_write` (the artifact,
then its sidecar), and read by every reader through `stored_bytes`, the
destination's streams. Below the set records and `store_artifact`, which use it."""

from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from engines.destinations.base import Destination
from engines.pipeline.artifacts import (
    SIDECAR_SUFFIX,
    SealedStream,
    StoredBytes,
    seal_stream,
    sidecar_bytes,
)
from engines.pipeline.crypto import Keyring


def stored_bytes(destination: Destination, key: str) -> StoredBytes:
    """The artifact under `key` as its readers take it: streams from the destination."""

    def size() -> int:
        found = destination.stat(key)
        return found.size if found is not None else 0

    return StoredBytes(
        key,
        lambda: destination.open_read(key),
        lambda: destination.open_read(key + SIDECAR_SUFFIX),
        size,
    )


def write_stored(
    destination: Destination,
    key: str,
    source: Iterable[bytes] | BinaryIO,
    keyring: Keyring,
    metadata: dict | Callable[[], dict],
    *,
    sidecar: bool = True,
    **options: Any,
) -> SealedStream:
    """Seal `source` under `key` through the destination, then its sidecar (the sidecar
    last: its presence marks a complete artifact). On any error or cancellation nothing
    new appears under `key`; a sidecar that cannot be written takes the artifact away."""
    with destination.open_write(key) as output:
        sealed = seal_stream(source, output, keyring, metadata, name=key, **options)
    try:
        if sidecar:
            with destination.open_write(key + SIDECAR_SUFFIX) as output:
                output.write(sidecar_bytes(sealed.sealed, sealed.checksum, sealed.stored_size))
    except BaseException:
        destination.delete(key)
        raise
    return sealed
