"""An unreadable catalog moved aside, so that `catalog rebuild` can make a new one.

The catalog is a cache of the repository: a file SQLite cannot read
(`CatalogUnreadableError`) is renamed with its journals, never deleted, and kept for
whoever wants to look at it. Only a process that failed to open it may move it: one
holding it open would lose its locks.
"""

import os
from datetime import datetime
from pathlib import Path

from engines.catalog.db import catalog_files


def move_aside(path: Path, moment: datetime) -> Path:
    """Rename the catalog and its journals to `<name>.unreadable-<moment>`; the new name."""
    stamp = moment.strftime("%Y%m%dT%H%M%S")
    target, number = path.with_name(f"{path.name}.unreadable-{stamp}"), 1
    # One set aside earlier in the same second is kept too, never replaced.
    while any(os.path.lexists(_renamed(file, path, target)) for file in catalog_files(path)):
        number += 1
        target = path.with_name(f"{path.name}.unreadable-{stamp}-{number}")
    for file in catalog_files(path):
        if file.exists():
            os.replace(file, _renamed(file, path, target))
    return target


def _renamed(file: Path, path: Path, target: Path) -> Path:
    """The catalog's `file` (itself or a journal) under the name `target` gives it."""
    return target.with_name(target.name + file.name[len(path.name) :])
