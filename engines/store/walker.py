"""Walking the backed-up folders: folders, files and symlinks in path order.

Special files (sockets, FIFOs, devices) are skipped and reported; a folder that
cannot be read and an entry that vanished during the walk are reported and
the walk goes on. Paths are `str` with surrogate escapes, so names that are not
valid UTF-8 survive the round trip to bytes.
"""

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engines.errors import JarvisError, NotFoundError
from engines.store.snapshots import shown

Report = Callable[[str, str], None]  # (kind of problem, message)

UNREADABLE, VANISHED, SPECIAL = "unreadable", "vanished", "special"


@dataclass(frozen=True, slots=True)
class Walked:
    path: str  # relative to "/", the snapshot's name for it
    absolute: str
    info: os.stat_result


def snapshot_path(absolute: Path | str) -> str:
    return str(absolute).lstrip("/")


@dataclass(frozen=True)
class Roots:
    present: list[Path]  # resolved, sorted, each once
    missing: list[str]  # as configured (made absolute): they do not exist


def check_roots(paths: Sequence[Path]) -> Roots:
    """Resolve the configured folders. A missing one is listed (the others are still
    backed up); every one missing, or one that cannot be read, is an error naming it."""
    roots: list[Path] = []
    missing: list[str] = []
    for configured in paths:
        resolved = Path(os.path.abspath(configured)).resolve()
        if not resolved.exists():
            missing.append(os.path.abspath(configured))
            continue
        if resolved.is_dir() and not os.access(resolved, os.R_OK | os.X_OK):
            raise JarvisError(
                f"BACKUP_FILE_PATHS: cannot read folder {resolved} (permission denied); run the "
                "backup as a user that can read it, or remove it from BACKUP_FILE_PATHS"
            )
        if not resolved.is_dir() and not os.access(resolved, os.R_OK):
            raise JarvisError(f"BACKUP_FILE_PATHS: cannot read {resolved} (permission denied)")
        if resolved not in roots:
            roots.append(resolved)
    if missing and not roots:
        raise NotFoundError(
            f"BACKUP_FILE_PATHS: {', '.join(missing)}: "
            f"{'does' if len(missing) == 1 else 'do'} not exist, so there is nothing to back "
            "up; create them or fix BACKUP_FILE_PATHS"
        )
    # A folder inside another one is walked with it; walking it again would list its
    # entries twice, and a restore refuses such a manifest.
    outermost = [r for r in roots if not any(o != r and r.is_relative_to(o) for o in roots)]
    return Roots(sorted(outermost), missing)


class Walker:
    def __init__(self, excludes: Sequence[str], skip: Sequence[Path], report: Report):
        # One regex for every pattern: the walk tests each name against all of them.
        self._excluded_pattern = (
            re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in excludes))
            if excludes
            else None
        )
        self._skip = {str(path) for path in skip}
        self._report = report

    def walk(self, roots: Sequence[Path]) -> Iterator[Walked]:
        for root in roots:
            absolute = str(root)
            try:
                info = os.lstat(absolute)
            except FileNotFoundError:
                self._report(VANISHED, f"{shown(absolute)}: vanished before it could be read")
                continue
            yield Walked(snapshot_path(absolute), absolute, info)
            if stat.S_ISDIR(info.st_mode):
                yield from self._folder(absolute, "")

    def _excluded(self, name: str, relative: str) -> bool:
        pattern = self._excluded_pattern
        return pattern is not None and bool(pattern.match(name) or pattern.match(relative))

    def _folder(self, folder: str, relative: str) -> Iterator[Walked]:
        try:
            with os.scandir(folder) as scan:
                names = sorted(entry.name for entry in scan)
        except PermissionError:
            self._report(UNREADABLE, f"{shown(folder)}: cannot read folder (permission denied)")
            return
        except FileNotFoundError:
            self._report(VANISHED, f"{shown(folder)}: folder vanished during the walk")
            return
        except OSError as exc:
            self._report(UNREADABLE, f"{shown(folder)}: cannot read folder ({exc.strerror})")
            return
        for name in names:
            absolute = f"{folder}/{name}" if folder != "/" else f"/{name}"
            below = f"{relative}/{name}" if relative else name
            if absolute in self._skip or self._excluded(name, below):
                continue
            try:
                info = os.lstat(absolute)
            except FileNotFoundError:
                self._report(VANISHED, f"{shown(absolute)}: vanished during the walk")
                continue
            except OSError as exc:
                self._report(UNREADABLE, f"{shown(absolute)}: cannot stat ({exc.strerror})")
                continue
            mode = info.st_mode
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                yield Walked(snapshot_path(absolute), absolute, info)
            elif stat.S_ISDIR(mode):
                yield Walked(snapshot_path(absolute), absolute, info)
                yield from self._folder(absolute, below)
            else:
                self._report(SPECIAL, f"{shown(absolute)}: skipped {_special_kind(mode)}")


def _special_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"
