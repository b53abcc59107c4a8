"""The sealed record of how a backup set ended: `sets/<set id>.json.enc`.

Written "running" as a set starts and replaced (atomically) by its final status
(complete, partial or failed, with the error redacted) as it finishes, through the
artifact container, its identity (repository, set id, name) bound in; it has no
sidecar and no catalog row. `catalog rebuild` takes a set's status from it: a
record still "running" when nothing holds the repository lock was interrupted.
Deleting a set deletes its record.
"""

from datetime import UTC, datetime

from engines.catalog import BackupSet
from engines.destinations.base import Destination
from engines.errors import IntegrityError
from engines.pipeline.artifacts import Expected, artifact_identity, read_sealed_metadata
from engines.pipeline.crypto import Keyring
from engines.plumbing.redaction import redact
from engines.repository.stored import stored_bytes, write_stored

SETS_FOLDER = "sets"
RECORD_SUFFIX = ".json.enc"
RECORD_KIND = "backup-set-record"
RUNNING = "running"
RECORD_STATUSES = (RUNNING, "complete", "partial", "failed")
# The identity's "source" of a record: no source is named like this.
_RECORD_SOURCE = "set"


def record_relpath(set_id: str) -> str:
    return f"{SETS_FOLDER}/{set_id}{RECORD_SUFFIX}"


def set_id_of_record(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(RECORD_SUFFIX)


def record_keys(repository: Destination) -> list[str]:
    """The keys of every set record, in key order."""
    prefix = f"{SETS_FOLDER}/"
    return [
        stored.key
        for stored in repository.list(prefix)
        if stored.key.endswith(RECORD_SUFFIX) and "/" not in stored.key[len(prefix) :]
    ]


def _identity(repository: Destination, set_id: str) -> dict[str, str]:
    repository_id = repository.repository_id() or ""
    return artifact_identity(repository_id, _RECORD_SOURCE, set_id, record_relpath(set_id))


def set_fields(backup_set: BackupSet) -> dict:
    """What every artifact of a set, and its record, seal about the set."""
    return {
        "set_id": backup_set.id,
        "set_kind": backup_set.kind,
        "set_tier": backup_set.tier,
        "set_created_at": backup_set.created_at.isoformat(),
        "set_parts": list(backup_set.parts or (backup_set.kind,)),
    }


def record_fields(backup_set: BackupSet, status: str, error: str | None) -> dict:
    return {
        "record": RECORD_KIND,
        **set_fields(backup_set),
        "status": status,
        "error": None if error is None else redact(error),
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }


def seal_record(repository: Destination, keyring: Keyring, fields: dict) -> None:
    """Seal `fields` as the record of set `fields["set_id"]`, replacing any earlier one."""
    set_id = str(fields["set_id"])
    write_stored(
        repository,
        record_relpath(set_id),
        [b""],
        keyring,
        fields,
        identity=_identity(repository, set_id),
        sidecar=False,
    )


def write_set_record(
    repository: Destination,
    keyring: Keyring,
    backup_set: BackupSet,
    status: str,
    error: str | None = None,
) -> None:
    seal_record(repository, keyring, record_fields(backup_set, status, error))


def read_set_record(repository: Destination, keyring: Keyring, set_id: str) -> dict:
    """The record of `set_id`, every byte authenticated and sealed for this repository,
    this set and this name (IntegrityError otherwise; KeyNotAvailableError without its
    key)."""
    relpath = record_relpath(set_id)
    expected = Expected(_identity(repository, set_id))
    sealed = read_sealed_metadata(stored_bytes(repository, relpath), keyring, expected)
    if sealed.get("record") != RECORD_KIND or sealed.get("set_id") != set_id:
        raise IntegrityError(f"{relpath}: not the record of backup set {set_id}")
    if sealed.get("status") not in RECORD_STATUSES:
        raise IntegrityError(f"{relpath}: unknown set status {sealed.get('status')!r}")
    return sealed
