"""Planning a files restore: which entries, where, and what happens to each.

`plan` compares every chosen entry with what is on disk (through `TargetTree`,
so a symlink on the way is reported, never followed) and decides: create,
overwrite, skip (and why) or, for a folder, that it exists. A dry run is this
plan, printed; the real restore carries it out.
"""

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from engines.errors import JarvisError, NotFoundError
from engines.store.snapshots import DIR, Entry, shown
from engines.store.target import BlockedPathError, TargetTree

OVERWRITE_POLICIES = ("never", "if-newer", "always")
CREATE, OVERWRITE, SKIP, EXISTS = "create", "overwrite", "skip", "exists"


# Why an entry was left out of a restore that is therefore incomplete (exit 1).
FOR_SAFETY, UNREADABLE = "skipped for safety", "data cannot be read"


@dataclass(frozen=True)
class FilesRestoreOptions:
    paths: tuple[str, ...] = ()
    target_dir: Path | None = None
    strip_prefix: str | None = None
    overwrite: str = "if-newer"
    dry_run: bool = False
    skip_missing: bool = False  # restore the rest when some files' data cannot be read


@dataclass
class Step:
    entry: Entry
    parts: tuple[str, ...]
    action: str
    reason: str = ""
    refused: str = ""  # FOR_SAFETY or UNREADABLE: skipped, and the restore is incomplete


def _normalise(path: str) -> str:
    return path.strip().strip("/")


def select_entries(
    entries: list[Entry], paths: tuple[str, ...], strip_prefix: str | None
) -> list[tuple[Entry, tuple[str, ...]]]:
    """The entries to restore with their paths below the target."""
    wanted = [_normalise(p) for p in paths if _normalise(p)]
    for path in wanted:
        if not any(e.path == path or e.path.startswith(path + "/") for e in entries):
            raise NotFoundError(f"{shown(path)}: not in this snapshot; see `--dry-run`")
    ancestors = {"/".join(w.split("/")[:i]) for w in wanted for i in range(1, w.count("/") + 1)}
    prefix = _normalise(strip_prefix) if strip_prefix else ""
    chosen = []
    for entry in entries:
        inside = not wanted or any(
            entry.path == w or entry.path.startswith(w + "/") for w in wanted
        )
        if not inside and not (entry.type == DIR and entry.path in ancestors):
            continue
        if prefix:
            if not entry.path.startswith(prefix + "/"):
                continue
            relative = entry.path[len(prefix) + 1 :]
        else:
            relative = entry.path
        chosen.append((entry, tuple(relative.split("/"))))
    if prefix and not chosen:
        raise NotFoundError(
            f"--strip-prefix {strip_prefix}: no entry of the selection lies below it"
        )
    return chosen


_NOT_A_FOLDER_IN_THE_WAY = "something that is not a folder is in the way"
_FOLDER_IN_THE_WAY = "a folder is in the way"


def _decide(entry: Entry, existing: os.stat_result | None, overwrite: str) -> tuple[str, str]:
    if existing is None:
        return CREATE, ""
    is_dir = stat.S_ISDIR(existing.st_mode)
    if entry.type == DIR:
        return (EXISTS, "") if is_dir else (SKIP, _NOT_A_FOLDER_IN_THE_WAY)
    if is_dir:
        return SKIP, _FOLDER_IN_THE_WAY
    if overwrite == "never":
        return SKIP, "exists (--overwrite never)"
    if overwrite == "always":
        return OVERWRITE, ""
    if entry.mtime_ns > existing.st_mtime_ns:
        return OVERWRITE, ""
    if entry.mtime_ns == existing.st_mtime_ns and entry.size == existing.st_size:
        return SKIP, "unchanged"
    return SKIP, "newer on disk (use --overwrite always to replace it)"


def plan(
    tree: TargetTree | None, chosen: list[tuple[Entry, tuple[str, ...]]], overwrite: str
) -> list[Step]:
    steps = []
    blocked: dict[tuple[str, ...], str] = {}
    for entry, parts in chosen:
        reason = next((blocked[parts[:i]] for i in range(len(parts)) if parts[:i] in blocked), None)
        if reason:
            steps.append(Step(entry, parts, SKIP, reason, FOR_SAFETY))
            continue
        try:
            existing = tree.lstat(parts) if tree is not None else None
        except BlockedPathError as exc:
            steps.append(Step(entry, parts, SKIP, str(exc), FOR_SAFETY))
            continue
        action, why = _decide(entry, existing, overwrite)
        if entry.type == DIR and action == SKIP:
            blocked[parts] = f"below {shown('/'.join(parts))}, which is not a folder"
        in_the_way = why in (_NOT_A_FOLDER_IN_THE_WAY, _FOLDER_IN_THE_WAY)
        steps.append(Step(entry, parts, action, why, FOR_SAFETY if in_the_way else ""))
    return steps


def target_root(options: FilesRestoreOptions) -> Path:
    target = Path(os.path.abspath(options.target_dir)) if options.target_dir else Path("/")
    if target.exists() and not target.is_dir():
        raise JarvisError(f"--target-dir {target} exists and is not a folder")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise JarvisError(
            f"cannot write to {existing} (permission denied); choose another --target-dir or "
            "run the restore as a user that may write there"
        )
    return target
