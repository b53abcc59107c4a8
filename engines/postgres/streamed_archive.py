"""An artifact restored as a stream: authenticated up front, inflated on its way in.

A whole-database restore goes into a scratch database first, so it need not wait for
a plain copy of the archive on disk. A first pass authenticates every chunk and the
sealed metadata without inflating (cheap) and keeps the archive's header and table
of contents as a small file, which is all `pg_restore --list`, the dry run and the
post-data steps read. The restore then reads the artifact a second time, each chunk
authenticated again as it is inflated into pg_restore; anything wrong on the way
fails the scratch restore, which drops the scratch database, so the target is never
touched by an artifact that does not check out.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.pipeline.artifacts import (
    READ_SIZE,
    PlainBlocks,
    decompressing,
    open_container,
    sealed_metadata,
)
from engines.pipeline.crypto import DecryptedStream, Keyring
from engines.plumbing.fsutil import private_work_folder
from engines.postgres.archive import WORK_PURPOSE
from engines.postgres.archive_layout import TableOfContents, read_table_of_contents
from engines.repository.resolve import ResolvedArtifact


@dataclass(frozen=True)
class StreamedArchive:
    path: Path  # the archive's header and table of contents, no data
    toc: TableOfContents
    metadata: dict[str, Any]  # as sealed inside the artifact
    resolved: ResolvedArtifact
    keyring: Keyring

    def plain_blocks(self) -> Iterator[bytes]:
        """The whole archive, block by block, each authenticated before it is handed out."""
        blocks = PlainBlocks(self.resolved.stored, self.keyring, self.resolved.expected)
        yield from blocks
        if blocks.sealed != self.metadata:
            raise IntegrityError(f"{self.resolved.label}: changed since it was authenticated")


@contextlib.contextmanager
def authenticated_stream(
    resolved: ResolvedArtifact, keyring: Keyring, repository_root: Path, context: JobContext
) -> Iterator[StreamedArchive]:
    """Authenticate all of `resolved`; yield it with its table of contents as a file."""
    with private_work_folder(repository_root, WORK_PURPOSE) as folder:
        context.log(f"authenticating {resolved.label}")
        toc = folder / "toc.dump"
        contents, sealed = _authenticate_keeping_toc(resolved, keyring, toc, context)
        context.log(f"{resolved.label}: every chunk authenticated")
        yield StreamedArchive(toc, contents, sealed, resolved, keyring)


def _authenticate_keeping_toc(
    resolved: ResolvedArtifact, keyring: Keyring, toc_path: Path, context: JobContext
) -> tuple[TableOfContents, dict[str, Any]]:
    name = resolved.stored.name
    with open_container(resolved.stored, keyring, resolved.expected) as reader:
        data = DecryptedStream(reader)
        head = b""
        with decompressing(reader, data, name) as plain:
            while (toc := _read_toc(head)) is None:
                block = plain.read(READ_SIZE)
                if not block:
                    raise IntegrityError(f"{name}: ends inside its table of contents")
                head += block
        toc_path.write_bytes(head[: toc.end])
        while data.read(READ_SIZE):  # the rest is authenticated, not inflated
            context.raise_if_cancelled()
        return toc, sealed_metadata(reader, name)


def _read_toc(head: bytes) -> TableOfContents | None:
    try:
        return read_table_of_contents(head)
    except ValueError as error:
        raise IntegrityError(f"not a pg_dump custom-format archive ({error})") from None
