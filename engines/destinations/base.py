"""The face every destination shares (local folder now, S3 later).

Keys are POSIX relative paths such as `postgres/x.dump.gz.enc`, the same on
every destination, so an artifact keeps its name wherever it is copied.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from engines.errors import JarvisError
from engines.plumbing.fsutil import TEMP_MARKER


class InvalidKeyError(JarvisError, ValueError):
    """A key that could escape the repository or collide with its own files."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


class Destination(Protocol):
    name: str

    def put(self, local_path: Path, key: str) -> None:
        """Store `local_path` under `key`; a failed put never leaves a partial object there."""
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


def validate_key(key: str) -> str:
    """Return `key` if it is a clean relative POSIX path, else raise InvalidKeyError naming it."""
    problem = _key_problem(key)
    if problem:
        raise InvalidKeyError(f"invalid repository key {key!r}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix may be empty or end in `/`; otherwise it follows the key rules."""
    if prefix:
        problem = _key_problem(prefix.removesuffix("/"))
        if problem:
            raise InvalidKeyError(f"invalid repository prefix {prefix!r}: {problem}")
    return prefix


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if "\0" in key or "\\" in key:
        return "it contains a NUL or a backslash"
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
