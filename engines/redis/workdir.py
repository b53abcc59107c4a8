"""A private (0700) folder inside the repository for a restore's decrypted copy.

The folder name carries our pid, so one left behind by a killed restore is removed by
the next restore.
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engines.fsutil import ensure_private_dir

WORK_FOLDER = ".redis-restore"
_PREFIX = "restore-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_work(root: Path) -> list[Path]:
    removed = []
    for folder in (root / WORK_FOLDER).glob(f"{_PREFIX}*"):
        try:
            pid = int(folder.name.removeprefix(_PREFIX).split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def private_work_folder(repository_root: Path) -> Iterator[Path]:
    parent = ensure_private_dir(repository_root / WORK_FOLDER)
    remove_abandoned_work(repository_root)
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
