"""Crash-safe file writes: temporary name, fsync, rename, fsync the folder.

A crash at any moment leaves either the previous file or the new one under the
final name, never a half-written file. Temporaries carry the writer's pid so a
later run can tell an abandoned one from one still being written.
"""

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engines.processes import process_alive

TEMP_MARKER = ".tmp-"
FILE_MODE = 0o600
DIR_MODE = 0o700


def temporary_path_for(final_path: Path) -> Path:
    token = secrets.token_hex(4)
    return final_path.with_name(f".{final_path.name}{TEMP_MARKER}{os.getpid()}-{token}")


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> Path:
    """Create `directory` (and parents) and make the leaf owner-only."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(directory, DIR_MODE)
    return directory


@contextlib.contextmanager
def atomic_output(final_path: Path, mode: int = FILE_MODE) -> Iterator[BinaryIO]:
    """Yield a binary file that appears under `final_path` only on success."""
    temporary = temporary_path_for(final_path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final_path)
        fsync_directory(final_path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _writer_pid(name: str) -> int | None:
    try:
        return int(name.rsplit(TEMP_MARKER, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def remove_abandoned_temporaries(root: Path) -> list[Path]:
    """Delete temporaries under `root` whose writing process is gone."""
    removed = []
    if not root.exists():
        return removed
    for path in root.rglob(f".*{TEMP_MARKER}*"):
        pid = _writer_pid(path.name)
        if pid is not None and not process_alive(pid) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _remove_abandoned_work_folders(parent: Path) -> None:
    for folder in parent.glob("work-*"):
        pid = folder.name.removeprefix("work-").split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def private_work_folder(repository_root: Path, purpose: str) -> Iterator[Path]:
    """An owner-only scratch folder in the repository (same disk, same privacy), removed
    afterwards; folders a killed process left behind are removed on the next use."""
    parent = ensure_private_dir(repository_root / f".{purpose}")
    _remove_abandoned_work_folders(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"work-{os.getpid()}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
