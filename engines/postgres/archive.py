"""An artifact made into a plain, seekable custom-format file, fully authenticated first.

pg_restore needs a seekable file for `--jobs` and `--list`, and nothing may
touch a database before every chunk of the artifact has authenticated. So the
artifact is decrypted into a private (0700) folder inside the repository, and
the file is handed out only after the whole stream, its end and its sealed
metadata checked out. The folder carries our pid so an abandoned one (the
process was killed) is removed by the next restore.
"""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.catalog import Catalog
from engines.jobs import JobContext
from engines.pipeline.artifacts import PlainBlocks
from engines.pipeline.crypto import Keyring
from engines.plumbing.fsutil import private_work_folder
from engines.postgres.archive_layout import record_data_positions
from engines.postgres.space import require_free_space
from engines.repository.resolve import ResolvedArtifact

WORK_PURPOSE = "postgres-restore"


def write_plain_copy(
    resolved: ResolvedArtifact, keyring: Keyring, destination: Path, context: JobContext
) -> dict[str, Any]:
    """Decrypt and decompress `resolved` into `destination` and return the metadata sealed
    inside it; raise IntegrityError (partial file removed) unless every byte authenticated."""
    total = resolved.metadata.get("plain_size")
    blocks = PlainBlocks(resolved.stored, keyring, resolved.expected)
    written = 0
    try:
        with open(destination, "xb") as out:
            os.chmod(destination, 0o600)
            for block in blocks:
                out.write(block)
                written += len(block)
                context.progress(written, total)
                context.raise_if_cancelled()
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return blocks.sealed


@dataclass(frozen=True)
class PlainArchive:
    path: Path
    metadata: dict[str, Any]  # as sealed inside the artifact: a forged sidecar cannot change it


@contextlib.contextmanager
def authenticated_archive(
    resolved: ResolvedArtifact,
    keyring: Keyring,
    repository_root: Path,
    catalog: Catalog,
    context: JobContext,
) -> Iterator[PlainArchive]:
    """Yield the plain archive once `resolved` has fully authenticated; removed afterwards."""
    plain_size = int(resolved.metadata.get("plain_size") or 0)
    with private_work_folder(repository_root, WORK_PURPOSE, needed=plain_size) as folder:
        require_free_space(
            catalog,
            folder,
            plain_size,
            purpose=f"the decrypted copy of {resolved.label}",
            advice="free space there or in BACKUP_DIR (the copy is removed after the restore)",
        )
        context.log(f"authenticating and decrypting {resolved.label}")
        path = folder / "archive.dump"
        sealed = write_plain_copy(resolved, keyring, path, context)
        context.log(f"{resolved.label}: every chunk authenticated")
        if located := record_data_positions(path):
            context.log(f"recorded where {located} data block(s) start, so pg_restore seeks")
        yield PlainArchive(path, sealed)
