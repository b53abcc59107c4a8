"""The archive's record of the cluster it takes WAL from: its system identifier and the
WAL page magic of its major version, sealed like every archived file.

The first segment pushed writes it; every later one must match it, so a second
cluster (another system id, or another major version) pointed at the same repository
is refused loudly instead of mixing its WAL in. `pitr setup --apply` records the
server it configures, which is how an operator moves the archive to a new cluster on
purpose (the old cluster's WAL stays under its own system id).
"""

import hashlib
import json
from dataclasses import dataclass

from engines.destinations import Destination
from engines.errors import JarvisError
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_layout import RECORD_STEM, SOURCE, record_key, record_keys
from engines.pitr.archive_store import find_key, read_whole, seal_into


class ArchiveMismatchError(JarvisError):
    """A file of another cluster or version than the archive's."""


@dataclass(frozen=True)
class ArchiveRecord:
    system_id: int
    wal_magic: int | None  # None until the first segment of a cluster set up by `pitr setup`


def _identity(repository_id: str, sha256: str | None = None) -> dict[str, str]:
    identity = {"repository": repository_id, "source": SOURCE, "name": RECORD_STEM}
    if sha256 is not None:
        identity["sha256"] = sha256
    return identity


def read_record(repository: Destination, keyring: Keyring) -> ArchiveRecord | None:
    key = find_key(repository, record_keys())
    repository_id = repository.repository_id()
    if key is None or repository_id is None:
        return None
    fields = json.loads(read_whole(repository, key, keyring, _identity(repository_id)).data)
    return ArchiveRecord(int(fields["system_id"]), fields.get("wal_magic"))


def write_record(
    repository: Destination, keyring: Keyring, record: ArchiveRecord, codec: str, level: int
) -> None:
    data = json.dumps({"system_id": record.system_id, "wal_magic": record.wal_magic}).encode()
    repository_id = repository.ensure_repository_id()
    identity = _identity(repository_id, hashlib.sha256(data).hexdigest())
    key = record_key(codec)
    seal_into(repository, key, data, keyring, identity, {"source": SOURCE}, codec, level)
    for stale in set(record_keys()) - {key}:  # one record: the one just written
        repository.delete(stale)


def check_against(record: ArchiveRecord, system_id: int, wal_magic: int | None, what: str) -> None:
    if record.system_id != system_id:
        raise ArchiveMismatchError(
            f"{what} is from the PostgreSQL cluster with system id {system_id}, but this "
            f"archive takes WAL of cluster {record.system_id}; point this server at a "
            "repository of its own (BACKUP_DIR), or, if it replaced that cluster on purpose, "
            "run `jarvis-tui pitr setup --apply` against it to archive it from now on"
        )
    if wal_magic is not None and record.wal_magic not in (None, wal_magic):
        raise ArchiveMismatchError(
            f"{what} was written by another PostgreSQL major version than this archive's "
            f"(WAL page magic {wal_magic:#06x}, the archive's {record.wal_magic:#06x}); an "
            "upgraded cluster needs `jarvis-tui pitr setup --apply` and a new base backup"
        )
