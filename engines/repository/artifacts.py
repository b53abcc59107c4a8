"""The repository's write path (as restic's internal/repository): an artifact and its
sidecar written through the destination's face, read back, and recorded in the catalog.

`store_artifact` is the one way a source puts bytes into the repository: the
catalog row says `writing` until the artifact and its sidecar are in place, so a
crash never leaves something that looks complete.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, BinaryIO

from engines.catalog import Artifact, BackupSet
from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.pipeline.artifacts import (
    Expected,
    VerifyReport,
    artifact_filename,
    artifact_identity,
    verify_artifact,
)
from engines.repository.set_records import record_relpath, set_fields
from engines.repository.stored import stored_bytes, write_stored
from engines.workspace import Workspace


def read_back(
    workspace: Workspace, relpath: str, identity: dict[str, str] | None = None
) -> VerifyReport:
    """Read a just-written artifact back from the destination: checksum, every chunk
    authenticated and, given its `identity`, the identity and key it was sealed with.

    Cheap enough for every backup (no decompression); `verify` and the restore drills
    go further.
    """
    keyring = workspace.keyring()
    expected = Expected(identity, key_id=keyring.current.key_id) if identity else None
    return verify_artifact(
        stored_bytes(workspace.repository, relpath), keyring, decompress=False, expected=expected
    )


def store_artifact(
    workspace: Workspace,
    backup_set: BackupSet,
    context: JobContext,
    *,
    source: str,
    mode: str,
    name: str,
    stream: Iterable[bytes] | BinaryIO,
    metadata: dict[str, Any] | Callable[[], dict[str, Any]],
    report_progress: bool = True,
) -> Artifact:
    """Compress, encrypt and store `stream` as `<source>/<set id>_<name>.<gz|zst>.enc`.

    Without `report_progress` the bytes written are not reported to `context` (an
    artifact stored beside another, whose progress the job shows)."""
    settings = workspace.settings
    codec = settings.backup_compression
    relpath = f"{source}/{artifact_filename(f'{backup_set.id}_{name}', codec)}"
    repository_id = workspace.repository.ensure_repository_id()
    identity = artifact_identity(repository_id, source, backup_set.id, relpath)
    row = workspace.catalog.add_artifact(backup_set.id, source, mode, relpath)

    def full_metadata() -> dict[str, Any]:
        extra = metadata() if callable(metadata) else metadata
        return {
            **set_fields(backup_set),
            "set_record": record_relpath(backup_set.id),
            "source": source,
            "mode": mode,
            "type": source,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            **extra,
        }

    context.log(f"writing {relpath} ({codec} level {settings.compression_level}, AES-256-GCM)")
    try:
        info = write_stored(
            workspace.repository,
            relpath,
            stream,
            workspace.keyring(),
            full_metadata,
            codec=codec,
            level=settings.compression_level,
            progress=(lambda done: context.progress(done, None)) if report_progress else None,
            cancelled=lambda: context.cancelled,
            identity=identity,
        )
    except BaseException as error:
        workspace.catalog.fail_artifact(row.id, str(error) or type(error).__name__)
        raise
    check = read_back(workspace, relpath, identity)
    if not check.ok:
        workspace.catalog.fail_artifact(row.id, check.problems[0])
        workspace.catalog.record_alert("critical", "verification", check.problems[0])
        raise IntegrityError(f"{relpath} failed its read-back check: {check.problems[0]}")
    workspace.catalog.complete_artifact(
        row.id,
        checksum=info.checksum,
        stored_size=info.stored_size,
        plain_size=info.plain_size,
        key_id=info.key_id,
        codec=info.codec,
        metadata=info.metadata,
    )
    workspace.catalog.record_verification(
        row.id, True, f"authenticated after backup: sha256 {check.checksum}, {check.chunks} chunks"
    )
    workspace.catalog.set_copy_state(row.id, "local", "stored")
    context.log(f"stored {relpath}: {info.stored_size} bytes, sha256 {info.checksum}")
    return workspace.catalog.find_artifact_by_relpath(relpath) or row


def clear_leftovers(workspace: Workspace, context: JobContext) -> None:
    """Temporaries and work folders of killed processes, anywhere in the repository; run
    under the repository lock, so no backup of ours is writing meanwhile."""
    removed = workspace.remove_abandoned_temporaries()
    if removed:
        context.log(f"removed {len(removed)} temporaries left by interrupted runs")
