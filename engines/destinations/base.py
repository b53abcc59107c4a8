"""The face every destination shares (local folder now, S3 later): streams in and out,
listings, deletes and a probe, so no caller needs to know where the bytes are.

Keys are POSIX relative paths such as `postgres/x.dump.gz.enc`, the same on
every destination, so an artifact keeps its name wherever it is copied.
"""

import io
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from engines.errors import JarvisError
from engines.plumbing.fsutil import TEMP_MARKER

if TYPE_CHECKING:
    from engines.config import Settings


class InvalidKeyError(JarvisError, ValueError):
    """A key that could escape the repository or collide with its own files."""


class BoundedReader(io.RawIOBase):
    """At most `length` bytes of `handle` from where it stands: a ranged read."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self._handle = handle
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[: self._left]
        count = self._handle.readinto(view) if view.nbytes else 0  # type: ignore[attr-defined]
        self._left -= count
        return count

    def close(self) -> None:
        self._handle.close()
        super().close()


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


class Destination(Protocol):
    """Where stored bytes live. Every write and read of the repository's bytes goes
    through these methods; the contract suite (tests/test_destination_contract.py) is
    what a destination must pass."""

    name: str

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Destination | None":
        """The destination the settings configure, or None when they configure none."""
        ...

    def open_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A stream whose bytes appear under `key` only when the block ends without an
        error, complete and durable; on an error nothing new appears and an earlier
        object under `key` stays as it was. Folders appear on first write."""
        ...

    def open_read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        """The object's bytes from `offset` on (`length` of them, or to its end);
        NotFoundError if absent. Without `length` the stream is seekable, since artifact
        readers look ahead (the container version) and step over chunk frames (the
        metadata record): the local one is the file itself, a remote one fetches the
        ranges it is asked for. Large sequential reads stay large."""
        ...

    def put(
        self, local_path: Path, key: str, progress: Callable[[int], None] | None = None
    ) -> None:
        """Store `local_path` under `key`; a failed put never leaves a partial object there.
        `progress`, if given, is called with each count of bytes sent (a resent part counts
        negative); an exception it raises (a cancelled job) stops the put."""
        ...

    def get(self, key: str, local_path: Path) -> None:
        """Copy `key` to `local_path`, which appears only once complete; NotFoundError if absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Objects whose key starts with `prefix` (a plain string prefix), in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; deleting an absent key is not an error, as on S3."""
        ...

    def stat(self, key: str) -> StoredObject | None: ...

    def local_path(self, key: str) -> Path | None:
        """The object's file on this host, for a consumer that can only be given a file
        (rekey's staged copy beside it); None for a destination elsewhere, whose callers
        spool a copy into a work folder instead."""
        ...

    def probe(self) -> Sequence[str]:
        """Problems that would stop a backup from being stored here (unreachable, not
        writable), one operator line each; empty when all is well. Changes nothing."""
        ...

    def repository_id(self) -> str | None:
        """The id bound into this repository's artifacts (None before its first write)."""
        ...

    def ensure_repository_id(self, adopted: str | None = None) -> str:
        """The repository's id, made and stored on first use: as `adopted` when given (a
        copy of a repository, or a host rebuilt from one, keeps its id). An id already
        stored is kept and returned, whatever `adopted` says."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if it is a clean relative POSIX path, else raise InvalidKeyError naming it."""
    problem = key_problem(key)
    if problem:
        raise InvalidKeyError(f"invalid repository key {key!r}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix may be empty or end in `/`; otherwise it follows the key rules."""
    if prefix:
        problem = key_problem(prefix.removesuffix("/"))
        if problem:
            raise InvalidKeyError(f"invalid repository prefix {prefix!r}: {problem}")
    return prefix


def key_problem(key: str) -> str | None:
    """What makes `key` no repository key (None when it is one)."""
    if not key:
        return "it is empty"
    if "\0" in key or "\\" in key:
        return "it contains a NUL or a backslash"
    if any(unicodedata.category(char) == "Cc" for char in key):
        # A name from a bucket someone else writes is printed: no terminal escapes.
        return "it contains a control character"
    if key.startswith("/"):
        return "it is absolute; keys are relative like 'postgres/name.gz.enc'"
    parts = key.split("/")
    if ".." in parts:
        return "it contains '..'"
    if "" in parts or "." in parts:
        return "it has an empty or '.' path segment"
    if any(part.startswith(".") for part in parts):
        return "names starting with '.' are reserved for the repository's own files"
    if any(TEMP_MARKER in part for part in parts):
        return f"names containing {TEMP_MARKER!r} are reserved for temporaries"
    return None
