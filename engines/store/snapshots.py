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
from pathlib import Path
from typing import Any

from engines.artifacts import open_artifact_plain
from engines.crypto import Keyring
from engines.errors import IntegrityError

FORMAT = "jarvis-files-snapshot/1"
FILE, DIR, SYMLINK = "file", "dir", "symlink"
TYPES = (FILE, DIR, SYMLINK)
_CHUNK_ID = re.compile(r"[0-9a-f]{64}")


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
    chunks: list[str] = field(default_factory=list)
    target: str = ""
    changed: bool = False  # the file changed while it was being read

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "path": self.path,
            "type": self.type,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "mtime_ns": self.mtime_ns,
        }
        if self.type == FILE:
            item.update(
                size=self.size, ctime_ns=self.ctime_ns, inode=self.inode, chunks=self.chunks
            )
            if self.changed:
                item["changed"] = True
        elif self.type == SYMLINK:
            item["target"] = self.target
        return item


@dataclass
class Manifest:
    roots: list[str]
    entries: list[Entry]
    key_id: str  # the master key whose chunk-id key named the chunks
    summary: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "roots": self.roots,
            "key_id": self.key_id,
            "summary": self.summary,
            "entries": [entry.to_json() for entry in self.entries],
        }
        # ensure_ascii keeps names that are not valid UTF-8 (surrogate escapes) intact.
        return json.dumps(document, separators=(",", ":")).encode("ascii")

    def by_path(self) -> dict[str, Entry]:
        return {entry.path: entry for entry in self.entries}


def shown(path: str) -> str:
    """`path` fit for a message: bytes that are not UTF-8 appear as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


def _int(item: dict, key: str, name: str) -> int:
    value = item.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise IntegrityError(f"{name}: entry {item.get('path')!r} has a non-integer {key}")
    return value


def _entry(item: Any, name: str) -> Entry:
    if not isinstance(item, dict):
        raise IntegrityError(f"{name}: an entry is not an object")
    path = item.get("path")
    problem = path_problem(path)
    if problem:
        label = repr(shown(path) if isinstance(path, str) else path)
        raise IntegrityError(
            f"{name}: refusing entry {label}: the path {problem}, so it could be written "
            "outside the restore target (the manifest is malformed or hostile)"
        )
    kind = item.get("type")
    if kind not in TYPES:
        raise IntegrityError(f"{name}: entry {path!r} has unknown type {kind!r}")
    chunks = item.get("chunks", [])
    if not isinstance(chunks, list) or not all(
        isinstance(c, str) and _CHUNK_ID.fullmatch(c) for c in chunks
    ):
        raise IntegrityError(f"{name}: entry {path!r} has malformed chunk ids")
    target = item.get("target", "")
    if not isinstance(target, str) or (kind == SYMLINK and (not target or "\0" in target)):
        raise IntegrityError(f"{name}: symlink {path!r} has an invalid target")
    return Entry(
        path=path,
        type=kind,
        mode=_int(item, "mode", name) & 0o7777,
        uid=_int(item, "uid", name),
        gid=_int(item, "gid", name),
        mtime_ns=_int(item, "mtime_ns", name),
        size=_int(item, "size", name),
        ctime_ns=_int(item, "ctime_ns", name),
        inode=_int(item, "inode", name),
        chunks=chunks,
        target=target,
        changed=bool(item.get("changed", False)),
    )


def _check_tree(entries: list[Entry], name: str) -> None:
    """No duplicates, and nothing below a symlink (a restore would write through it)."""
    seen: set[str] = set()
    symlinks: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise IntegrityError(f"{name}: refusing a manifest that lists {entry.path!r} twice")
        seen.add(entry.path)
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            if ancestor in symlinks:
                raise IntegrityError(
                    f"{name}: refusing entry {entry.path!r}: it lies below the symlink "
                    f"{ancestor!r} of the same snapshot, so restoring it could write outside "
                    "the target (the manifest is malformed or hostile)"
                )
        if entry.type == SYMLINK:
            symlinks.add(entry.path)


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
    return Manifest(
        roots,
        entries,
        str(document.get("key_id", "")),
        summary if isinstance(summary, dict) else {},
    )


def load_manifest(path: Path, keyring: Keyring, name: str | None = None) -> Manifest:
    """Authenticate and parse the manifest artifact at `path`."""
    label = name or path.name
    with open_artifact_plain(path, keyring) as plain:
        data = plain.read()
    return parse_manifest(data, label)
