"""A catalogued artifact's stored (encrypted) bytes, opened for a download and checked.

Read through the workspace's reader: the repository's file when it is there at the
catalogued size, else the first copy destination (S3) holding the object, streamed in
ranges at constant memory. Before a byte is sent: a local file must resolve inside the
repository (no symlink leads out of it) and be a regular file, and whichever copy is
read must have the catalogued size; anything else is an `integrity` error (422) naming
the artifact and `jarvis-tui verify`. Its SHA-256 can only be known by reading it: the
stream (`download.body`) hashes what it sends and cuts the connection before the last
bytes when they do not match, unless `checked_files` holds the opened file's fingerprint
(this process hashed it whole before and it is unchanged since).
"""

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engines.catalog.rows import Artifact
from engines.destinations import Destination
from engines.errors import JarvisError, NotFoundError
from engines.workspace import Workspace
from jarvis_tui.api.download.checked_files import CheckedFiles, Fingerprint, Key, no_writer
from jarvis_tui.api.errors import ApiError

# Large reads: 4 MiB. 1-16 MiB sent a warm 1 GiB alike on uvloop+httptools (0.3-0.45
# CPU-s/GiB in the server, wall time set by the load), 32 MiB slower: the kernel's two
# copies (page cache to this buffer, buffer to socket) are most of the work (perf).
BLOCK = 4 << 20


class StoredBytesChanged(Exception):
    """The stored bytes ended before their catalogued size while being sent."""


def integrity_error(artifact: Artifact, problem: str) -> ApiError:
    return ApiError(
        422,
        "integrity",
        f"{artifact.relpath} (backup {artifact.set_id}): {problem}; it is damaged or was "
        f"replaced: run `jarvis-tui verify {artifact.set_id}`",
    )


@dataclass
class StoredArtifact:
    """One artifact ready to stream: `size` and `sha256` are the catalog's, checked."""

    artifact: Artifact
    size: int
    sha256: str
    _fd: int | None = None  # a local file, read with pread
    _reader: Destination | None = None  # else this reader's stream
    fingerprint: Fingerprint | None = None  # a local file's, as opened
    checked: CheckedFiles | None = None

    @property
    def relpath(self) -> str:
        return self.artifact.relpath

    @property
    def key(self) -> Key:
        return (self.artifact.id, self.relpath, self.sha256)

    def known_unchanged(self) -> bool:
        """This process hashed this very file whole before, it matched, and nothing
        changed it since: the fingerprint as opened is the one remembered then, and no
        process has it open for writing (a shared mapping's writes move no time)."""
        if self.fingerprint is None or self.checked is None or self._fd is None:
            return False
        return self.checked.unchanged(self.key, self.fingerprint) and no_writer(self._fd)

    def unchanged_since_opened(self) -> bool:
        assert self._fd is not None and self.fingerprint is not None
        return Fingerprint.of(self._fd) == self.fingerprint

    def matched(self, read_began_ns: int) -> None:
        """Its bytes read whole from `read_began_ns` hashed to the catalog's: remember
        the file, if it was not changed while read (a local file only)."""
        if self.checked is None or self.fingerprint is None or self._fd is None:
            return
        if self.unchanged_since_opened() and no_writer(self._fd):
            self.checked.remember(self.key, self.fingerprint, read_began_ns)
        else:
            self.forget()

    def forget(self) -> None:
        if self.checked is not None:
            self.checked.forget(self.key)

    def blocks(self, offset: int, length: int) -> Iterator[bytes]:
        """`length` bytes from `offset`, in blocks of up to BLOCK bytes."""
        if self._fd is not None:
            yield from self._file_blocks(self._fd, offset, length)
            return
        assert self._reader is not None
        if length == 0:
            return
        with self._reader.open_read(self.relpath, offset, length) as stream:
            left = length
            while left:
                block = stream.read(min(BLOCK, left))
                if not block:
                    raise StoredBytesChanged(f"{self.relpath}: ended {left} bytes early")
                left -= len(block)
                yield block

    def _file_blocks(self, fd: int, offset: int, length: int) -> Iterator[bytes]:
        end = offset + length
        while offset < end:
            block = os.pread(fd, min(BLOCK, end - offset), offset)
            if not block:
                raise StoredBytesChanged(f"{self.relpath}: ended {end - offset} bytes early")
            offset += len(block)
            yield block

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def open_stored(
    workspace: Workspace, artifact: Artifact, checked: CheckedFiles | None = None
) -> StoredArtifact:
    """`artifact`'s stored bytes, checked for place and size; ApiError 422 otherwise.
    A local file is fingerprinted for `checked` (None: always hashed)."""
    if artifact.stored_size is None or artifact.checksum is None:
        raise integrity_error(artifact, "the catalog holds no size or checksum for it")
    reader = workspace.reader()
    try:
        local = reader.local_path(artifact.relpath)
        if local is not None:
            fd = _open_inside(Path(workspace.local_root), local, artifact)
            if fd is not None:
                fingerprint = Fingerprint.of(fd)
                opened = StoredArtifact(
                    artifact, fingerprint.size, "", fd, fingerprint=fingerprint, checked=checked
                )
                return _checked(artifact, opened)
            # Gone since the reader looked (it remembers where each object was): a copy?
            pass_over = getattr(reader, "pass_over_repository", None)
            if pass_over is None or pass_over(artifact.relpath) is None:
                raise integrity_error(artifact, "no copy of its stored file is left")
        found = reader.stat(artifact.relpath)
    except NotFoundError:
        found = None
    except (OSError, JarvisError) as error:
        raise ApiError(
            503, "unavailable", f"{artifact.relpath}: cannot be read now: {error}"
        ) from None
    if found is None:
        raise integrity_error(artifact, "no copy of its stored file is left")
    return _checked(artifact, StoredArtifact(artifact, found.size, "", _reader=reader))


def _checked(artifact: Artifact, opened: StoredArtifact) -> StoredArtifact:
    assert artifact.stored_size is not None and artifact.checksum is not None
    if opened.size != artifact.stored_size:
        opened.close()
        raise integrity_error(
            artifact,
            f"the stored file is {opened.size} bytes but the catalog recorded "
            f"{artifact.stored_size}",
        )
    opened.sha256 = artifact.checksum
    return opened


def _open_inside(root: Path, path: Path, artifact: Artifact) -> int | None:
    """A descriptor of `path` once it resolves inside `root` to a regular file; None
    when it is gone."""
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not resolved.is_relative_to(root.resolve()):
        raise integrity_error(artifact, "its stored file leads outside the repository")
    try:
        # O_NONBLOCK: opening a FIFO put in its place would wait for a writer forever,
        # holding a worker thread; regular files read the same with or without it.
        fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:  # a symlink swapped in since it was resolved: ELOOP
        problem = f"its stored file cannot be opened: {error.strerror}"
        raise integrity_error(artifact, problem) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise integrity_error(artifact, "its stored file is not a regular file")
    if not _opened_inside(fd, root.resolve()):
        os.close(fd)  # a parent folder swapped for a symlink between resolve and open
        raise integrity_error(artifact, "its stored file leads outside the repository")
    return fd


def _opened_inside(fd: int, root: Path) -> bool:
    """Where the descriptor really points (Linux's /proc), inside `root`; True where the
    system cannot say (the resolve before the open is then the only check)."""
    try:
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return True
    return opened.is_relative_to(root)
