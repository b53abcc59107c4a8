"""The local repository: a folder on this host, folders 0700 and files 0600.

Objects are written through `fsutil.atomic_output`, so a temporary name holds
the bytes until they are complete and fsynced; listings never show those
temporaries, nor the repository's own dot-files such as `.lock`.
"""

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, BinaryIO

from engines.destinations.base import BoundedReader, StoredObject, validate_key, validate_prefix
from engines.errors import NotFoundError
from engines.plumbing.fsutil import (
    FILE_MODE,
    TEMP_MARKER,
    atomic_output,
    ensure_private_dir,
    fsync_directory,
)
from engines.plumbing.os_errors import explain_os_error
from engines.repository.repository_id import ensure_repository_id, read_repository_id

if TYPE_CHECKING:
    from engines.config import Settings

COPY_BUFFER = 1 << 20


class LocalRepository:
    def __init__(self, root: Path, name: str = "local") -> None:
        self.root = Path(root)
        self.name = name

    def __repr__(self) -> str:
        return f"LocalRepository({str(self.root)!r})"

    @classmethod
    def from_settings(cls, settings: "Settings") -> "LocalRepository":
        return cls(settings.repository_dir)

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def local_path(self, key: str) -> Path:
        return self.path_for(key)

    def repository_id(self) -> str | None:
        return read_repository_id(self.root)

    def ensure_repository_id(self, adopted: str | None = None) -> str:
        ensure_private_dir(self.root)
        return ensure_repository_id(self.root, adopted)

    def probe(self) -> list[str]:
        probe = self.root / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.write(fd, b"jarvis probe\n")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as error:
            if self.root.exists():  # said of the repository, not of the probe file in it
                said = OSError(error.errno, error.strerror)
                return [str(explain_os_error(said, where=self.root))]
            return [f"{self.root}: {error.strerror or error}; run `jarvis-tui init`"]
        return []

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        target = self.path_for(key)
        self._make_private_parents(target)
        with atomic_output(target) as output:
            yield output

    def open_read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        try:
            handle = open(self.path_for(key), "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{key}: no such object in repository {self.root}") from None
        if offset:
            handle.seek(offset)
        return handle if length is None else BoundedReader(handle, length)

    def free_bytes(self) -> int:
        existing = self.root
        while not existing.exists():
            existing = existing.parent
        return shutil.disk_usage(existing).free

    def put(
        self, local_path: Path, key: str, progress: Callable[[int], None] | None = None
    ) -> None:
        with open(local_path, "rb") as source, self.open_write(key) as output:
            while block := source.read(COPY_BUFFER):
                output.write(block)
                if progress is not None:
                    progress(len(block))

    def get(self, key: str, local_path: Path) -> None:
        with self.open_read(key) as source:
            local_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(local_path) as output:
                shutil.copyfileobj(source, output, COPY_BUFFER)

    def stat(self, key: str) -> StoredObject | None:
        try:
            info = self.path_for(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return _stored(key, info) if S_ISREG(info.st_mode) else None

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        fsync_directory(path.parent)
        self._remove_empty_folders(path.parent)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        return self._walk(self.root, "", validate_prefix(prefix))  # a bad prefix fails at once

    def _walk(self, folder: Path | str, folder_key: str, prefix: str) -> Iterator[StoredObject]:
        try:
            with os.scandir(folder) as scan:
                named = [(_entry_key(folder_key, e), e) for e in scan if _visible(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for key, entry in sorted(named, key=lambda pair: pair[0]):
            if key.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(entry.path, key, prefix)
            elif key.startswith(prefix):
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while listing
                if S_ISREG(info.st_mode):
                    yield _stored(key, info)

    def _make_private_parents(self, target: Path) -> None:
        if not self.root.is_dir():
            ensure_private_dir(self.root)
        missing = []
        folder = target.parent
        while folder != self.root and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            ensure_private_dir(folder)
            fsync_directory(folder.parent)

    def _remove_empty_folders(self, folder: Path) -> None:
        """Tidy folders emptied by a delete, keeping the layout's top-level folders."""
        while folder.parent != self.root and folder != self.root:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _visible(name: str) -> bool:
    return not name.startswith(".") and TEMP_MARKER not in name


def _entry_key(folder_key: str, entry: os.DirEntry[str]) -> str:
    # A folder sorts as "name/", so a depth-first walk yields keys in global byte order.
    suffix = "/" if entry.is_dir(follow_symlinks=False) else ""
    return f"{folder_key}{entry.name}{suffix}"


def _stored(key: str, info: os.stat_result) -> StoredObject:
    return StoredObject(key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))
