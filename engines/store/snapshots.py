"""Snapshot manifests: the tree of one files backup, stored encrypted, written last.

A manifest lists every folder, file and symlink under the backed-up roots with
its mode, owner, times and (for files) the ids of its chunks, in path order.
Paths are relative to `/` (`tmp/jarvis-music-uploads/a.mp3`), so a restore can
put them back where they were or under any target folder. A manifest is
stored as an ordinary artifact (compressed, sealed, with a sidecar the catalog
can be rebuilt from) named `files/<set id>_snapshot.json.gz.enc`.

Loading refuses a manifest whose paths could lead a restore outside its
target: absolute paths, `..`, empty or `.` segments, duplicates, and entries
below a symlink of the same snapshot.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from engines.destinations.base import Destination
from engines.errors import IntegrityError
from engines.pipeline.artifacts import ArtifactBytes, Expected, read_artifact_whole
from engines.pipeline.crypto import Keyring
from engines.plumbing.printable import printable
from engines.repository.stored import stored_bytes
from engines.store.keys import CHUNK_ID_VERSIONS, CHUNK_IDS_V1

FORMAT = "jarvis-files-snapshot/1"
FILE, DIR, SYMLINK = "file", "dir", "symlink"
TYPES = (FILE, DIR, SYMLINK)
# Each entry is a JSON array, so 30,000 files cost a walk and not a parse of their keys:
#   file:    [path, "f", mode, uid, gid, mtime_ns, size, ctime_ns, inode, chunk ids, changed]
#   folder:  [path, "d", mode, uid, gid, mtime_ns]
#   symlink: [path, "l", mode, uid, gid, mtime_ns, target]
# A file's chunk ids are one string: their hex forms, concatenated in order.
CODES = {FILE: "f", DIR: "d", SYMLINK: "l"}
_TYPE_OF = {code: kind for kind, code in CODES.items()}
_LENGTHS = {FILE: 11, DIR: 6, SYMLINK: 7}
_HEX = re.compile(r"(?:[0-9a-f]{64})*")
ID_HEX = 64


@dataclass(slots=True)
class Entry:
    path: str
    type: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    ctime_ns: int = 0
    inode: int = 0
    chunks: str = ""  # hex chunk ids, concatenated
    target: str = ""
    changed: bool = False  # the file changed while it was being read

    def chunk_ids(self) -> list[bytes]:
        raw = bytes.fromhex(self.chunks)
        return [raw[start : start + ID_HEX // 2] for start in range(0, len(raw), ID_HEX // 2)]

    def to_json(self) -> list[Any]:
        item: list[Any] = [
            self.path, CODES[self.type], self.mode, self.uid, self.gid, self.mtime_ns
        ]  # fmt: skip
        if self.type == FILE:
            item += [self.size, self.ctime_ns, self.inode, self.chunks, int(self.changed)]
        elif self.type == SYMLINK:
            item.append(self.target)
        return item


@dataclass
class Manifest:
    roots: list[str]
    entries: list[Entry]
    key_id: str  # the master key whose chunk-id key named the chunks
    summary: dict[str, Any] = field(default_factory=dict)
    chunk_id_version: int = CHUNK_IDS_V1  # how that chunk-id key was derived (keys.py)

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "roots": self.roots,
            "key_id": self.key_id,
            "chunk_id_version": self.chunk_id_version,
            "summary": self.summary,
            "entries": [entry.to_json() for entry in self.entries],
        }
        # ensure_ascii keeps names that are not valid UTF-8 (surrogate escapes) intact.
        return json.dumps(document, separators=(",", ":")).encode("ascii")

    def by_path(self) -> dict[str, Entry]:
        return {entry.path: entry for entry in self.entries}


def shown(path: str) -> str:
    """`path` fit for a message: bytes that are not UTF-8 and control characters appear
    as \\xNN escapes."""
    return printable(path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def path_problem(path: Any) -> str | None:
    """Why `path` is not a safe relative snapshot path, or None."""
    if not isinstance(path, str) or not path:
        return "not a non-empty string"
    if "\0" in path:
        return "contains a NUL byte"
    if path.startswith("/"):
        return "is absolute"
    parts = path.split("/")
    if ".." in parts:
        return "contains '..'"
    if "" in parts or "." in parts:
        return "has an empty or '.' segment"
    return None


def _entry(item: Any, name: str) -> Entry:
    if not isinstance(item, list) or not item:
        raise IntegrityError(f"{name}: an entry is not a list")
    path = item[0]
    problem = path_problem(path)
    if problem:
        label = repr(shown(path) if isinstance(path, str) else path)
        raise IntegrityError(
            f"{name}: refusing entry {label}: the path {problem}, so it could be written "
            "outside the restore target (the manifest is malformed or hostile)"
        )
    kind = _TYPE_OF.get(item[1]) if len(item) > 1 else None
    if kind is None or len(item) != _LENGTHS[kind]:
        raise IntegrityError(f"{name}: entry {shown(path)!r} has an unknown type or shape")
    numbers = item[2:6] if kind != FILE else [*item[2:9], item[10]]
    if not all(type(number) is int for number in numbers):
        raise IntegrityError(f"{name}: entry {shown(path)!r} has a non-integer field")
    entry = Entry(path, kind, item[2] & 0o7777, item[3], item[4], item[5])
    if kind == FILE:
        chunks = item[9]
        if not isinstance(chunks, str) or not _HEX.fullmatch(chunks):
            raise IntegrityError(f"{name}: entry {shown(path)!r} has malformed chunk ids")
        entry.size, entry.ctime_ns, entry.inode = item[6], item[7], item[8]
        entry.chunks, entry.changed = chunks, bool(item[10])
    elif kind == SYMLINK:
        target = item[6]
        if not isinstance(target, str) or not target or "\0" in target:
            raise IntegrityError(f"{name}: symlink {shown(path)!r} has an invalid target")
        entry.target = target
    return entry


def below_a_non_folder(paths_and_kinds: list[tuple[str, str]]) -> tuple[str, str, str] | None:
    """The first path that lies below a symlink or a file of the same list, whatever the
    order of the list: (path, that ancestor, its kind); None when there is none.

    Every non-folder is known before any path is tested, so an entry listed before the
    symlink it sits under is caught as surely as one listed after it.
    """
    non_folders = {path: kind for path, kind in paths_and_kinds if kind != DIR}
    if not non_folders:
        return None
    for path, _ in paths_and_kinds:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            kind = non_folders.get(ancestor)
            if kind is not None:
                return path, ancestor, kind
    return None


def _check_tree(entries: list[Entry], name: str) -> None:
    """No duplicates, and nothing below a symlink (a restore would write through it) or a
    file, checked over the whole manifest before anything is restored."""
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise IntegrityError(
                f"{name}: refusing a manifest that lists {shown(entry.path)!r} twice"
            )
        seen.add(entry.path)
    found = below_a_non_folder([(entry.path, entry.type) for entry in entries])
    if found is not None:
        path, ancestor, kind = found
        what = "symlink" if kind == SYMLINK else "file"
        raise IntegrityError(
            f"{name}: refusing entry {shown(path)!r}: it lies below the {what} "
            f"{shown(ancestor)!r} of the same snapshot, so restoring it could write "
            "outside the target (the manifest is malformed or hostile)"
        )


def parse_manifest(data: bytes, name: str) -> Manifest:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{name}: snapshot manifest is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise IntegrityError(f"{name}: not a files snapshot manifest (format {FORMAT} expected)")
    raw_entries = document.get("entries")
    roots = document.get("roots")
    if not isinstance(raw_entries, list) or not isinstance(roots, list):
        raise IntegrityError(f"{name}: snapshot manifest lacks its entries or roots")
    for root in roots:
        if path_problem(root) and root != "":
            raise IntegrityError(f"{name}: refusing root {root!r}: {path_problem(root)}")
    entries = [_entry(item, name) for item in raw_entries]
    _check_tree(entries, name)
    summary = document.get("summary")
    version = document.get("chunk_id_version", CHUNK_IDS_V1)  # absent: made before versions
    if type(version) is not int or version not in CHUNK_ID_VERSIONS:
        raise IntegrityError(
            f"{name}: unknown chunk-id derivation {version!r} (made by a newer jarvis-tui?)"
        )
    return Manifest(
        roots,
        entries,
        str(document.get("key_id", "")),
        summary if isinstance(summary, dict) else {},
        version,
    )


def load_manifest(
    source: ArtifactBytes,
    keyring: Keyring,
    name: str | None = None,
    expected: Expected | None = None,
) -> Manifest:
    """Authenticate and parse the manifest artifact `source` (a resolved artifact's bytes);
    with `expected`, refuse a manifest other than the one asked for (an older one served
    as `latest`, say)."""
    label = name or source.name
    return parse_manifest(read_artifact_whole(source, keyring, expected), label)


def load_stored_manifest(repository: Destination, key: str, keyring: Keyring) -> Manifest:
    """The manifest stored under `key`, read through the destination (prune, repair)."""
    return load_manifest(stored_bytes(repository, key), keyring, key)
