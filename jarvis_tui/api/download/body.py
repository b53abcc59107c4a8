"""A download's body as pieces of known length: literal bytes (tar headers, padding) and
stored artifacts. Its length is known before a byte is read, so any byte range of it
can be sent by walking the pieces.

Every artifact the range covers whole is hashed as it is sent, and its last block is
held back until its SHA-256 matches the catalog's: a damaged or swapped file (same size)
raises `HashMismatch` before the client has every byte, so no response that claims the
catalogued hash ever completes. An artifact covered only in part (a resumed download)
cannot be hashed here; its whole file's SHA-256 is in the headers for the client.

A local file this process already hashed whole and found unchanged since (its opened
descriptor's fingerprint, see `checked_files`) is sent without hashing; its last block is
still held back until a second `fstat` shows it unchanged while it was read.
"""

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from jarvis_tui.api.download.byte_ranges import ByteRange
from jarvis_tui.api.download.checked_files import read_clock
from jarvis_tui.api.download.stored_artifact import StoredArtifact, StoredBytesChanged

logger = logging.getLogger("jarvis.api")
UNHASHED = "sent without hashing: unchanged since it matched the catalog"


class HashMismatch(Exception):
    """An artifact's stored bytes did not hash to what the catalog recorded."""

    def __init__(self, stored: StoredArtifact, found: str) -> None:
        super().__init__(
            f"{stored.relpath} (backup {stored.artifact.set_id}): sha256 of the stored "
            f"bytes is {found} but the catalog recorded {stored.sha256}; the download was "
            f"cut short: run `jarvis-tui verify {stored.artifact.set_id}`"
        )


@dataclass(frozen=True)
class Literal:
    data: bytes

    @property
    def length(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Stored:
    stored: StoredArtifact

    @property
    def length(self) -> int:
        return self.stored.size


Piece = Literal | Stored


@dataclass
class Body:
    pieces: Sequence[Piece]

    @property
    def length(self) -> int:
        return sum(piece.length for piece in self.pieces)

    def chunks(self, wanted: ByteRange | None) -> Iterator[bytes]:
        """The bytes of `wanted` (all of them for None), piece by piece."""
        first, last = (0, self.length - 1) if wanted is None else (wanted.start, wanted.end)
        offset = 0
        for piece in self.pieces:
            start, end = max(first, offset), min(last, offset + piece.length - 1)
            if start <= end:
                begin, count = start - offset, end - start + 1
                if isinstance(piece, Literal):
                    yield piece.data[begin : begin + count]
                else:
                    whole = begin == 0 and count == piece.length
                    yield from _stored_chunks(piece.stored, begin, count, whole)
            offset += piece.length
            if offset > last:
                break

    def close(self) -> None:
        for piece in self.pieces:
            if isinstance(piece, Stored):
                piece.stored.close()


def _stored_chunks(stored: StoredArtifact, begin: int, count: int, whole: bool) -> Iterator[bytes]:
    if not whole:
        yield from stored.blocks(begin, count)
        return
    if stored.known_unchanged():
        yield from _unhashed_chunks(stored)
        return
    began = read_clock()
    digest = hashlib.sha256()
    held: bytes | None = None
    for block in stored.blocks(0, stored.size):
        if held is not None:
            yield held
        digest.update(block)
        held = block
    found = digest.hexdigest()
    if found != stored.sha256:
        raise HashMismatch(stored, found)
    stored.matched(began)
    if held is not None:
        yield held


def _unhashed_chunks(stored: StoredArtifact) -> Iterator[bytes]:
    logger.info("API: %s (backup %s) %s", stored.relpath, stored.artifact.set_id, UNHASHED)
    held: bytes | None = None
    for block in stored.blocks(0, stored.size):
        if held is not None:
            yield held
        held = block
    if not stored.unchanged_since_opened():
        stored.forget()
        raise StoredBytesChanged(
            f"{stored.relpath} (backup {stored.artifact.set_id}): changed while sent "
            f"unhashed; the download was cut short: download it again"
        )
    if held is not None:
        yield held
