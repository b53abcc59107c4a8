"""`diff SNAP_A SNAP_B`: paths added, removed and changed between two snapshots."""

from dataclasses import dataclass, field

from engines.store.resolve import resolve_snapshot
from engines.store.snapshots import FILE, Entry, Manifest, load_manifest
from engines.workspace import Workspace


@dataclass
class SnapshotDiff:
    first: str
    second: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, list[str]]] = field(default_factory=list)


def _changes(old: Entry, new: Entry, same_key: bool) -> list[str]:
    if old.type != new.type:
        return [f"type {old.type} -> {new.type}"]
    changes = []
    if old.type == FILE:
        if old.size != new.size or (same_key and old.chunks != new.chunks):
            changes.append("content")
        elif not same_key and old.mtime_ns != new.mtime_ns:
            changes.append("content?")  # chunk ids of different keys cannot be compared
    if old.target != new.target:
        changes.append("target")
    if old.mode != new.mode:
        changes.append(f"mode {old.mode:o} -> {new.mode:o}")
    if (old.uid, old.gid) != (new.uid, new.gid):
        changes.append("owner")
    if old.mtime_ns != new.mtime_ns and old.type == FILE:
        changes.append("mtime")
    return changes


def compare(first: Manifest, second: Manifest, result: SnapshotDiff) -> SnapshotDiff:
    before, after = first.by_path(), second.by_path()
    same_key = first.key_id == second.key_id
    result.added = [path for path in after if path not in before]
    result.removed = [path for path in before if path not in after]
    for path, new in after.items():
        old = before.get(path)
        if old is not None:
            changes = _changes(old, new, same_key)
            if changes:
                result.changed.append((path, changes))
    return result


def diff_snapshots(workspace: Workspace, first_ref: str, second_ref: str) -> SnapshotDiff:
    keyring = workspace.keyring()
    first = resolve_snapshot(workspace, first_ref)
    second = resolve_snapshot(workspace, second_ref)
    return compare(
        load_manifest(first.stored, keyring, first.label, first.expected),
        load_manifest(second.stored, keyring, second.label, second.expected),
        SnapshotDiff(first.label, second.label),
    )
