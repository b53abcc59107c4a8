"""`wal-push`: one file PostgreSQL's archiver hands over (`archive_command`), sealed into
the repository and every copy destination, or a non-zero exit so that it retries.

The file is checked first: a segment's own header must name the archive's cluster
(system id), its major version (page magic) and the place its name says (page
address). Stored once: the same name with the same content again succeeds (a retry
after a failed S3 upload only sends what is missing), another content under the same
name is refused loudly. Sealed with its identity (system id, timeline, name, content
sha256) inside the authenticated data, and written under a temporary name renamed
only when whole.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engines.config import Settings
from engines.destinations import Destination, copy_destinations, repository_from_settings
from engines.errors import IntegrityError, JarvisError, ReadOnlyBrowseError
from engines.keys import keyring_from_settings
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_layout import candidate_keys, key_for, wal_identity
from engines.pitr.archive_record import ArchiveRecord, check_against, read_record, write_record
from engines.pitr.archive_store import find_key, read_whole, seal_into
from engines.pitr.wal_files import WalName, check_segment, control_file_system_id, parse_name
from engines.plumbing.os_errors import explain_os_error


class WalConflictError(JarvisError):
    """The archive holds another content under the same name."""


@dataclass
class PushOutcome:
    key: str
    already_stored: bool
    copied_to: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Pushed:
    name: WalName
    data: bytes
    sha256: str
    system_id: int


def read_wal_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise explain_os_error(error, where=path) from None


def _system_id(
    path: Path, name: WalName, data: bytes, record: ArchiveRecord | None
) -> tuple[int, int | None]:
    """(system id, WAL page magic) of the file: a segment's own header; for a .history or
    .backup file, the data folder's pg_control (the archiver runs in it), else the record."""
    if name.is_segment:
        header = check_segment(data, name, str(path))
        return header.system_id, header.magic
    pgdata = path.absolute().parent.parent
    found = control_file_system_id(pgdata)
    if found is not None:
        return found, None
    if record is not None:
        return record.system_id, None
    raise JarvisError(
        f"{path}: cannot tell which cluster this {name.kind} file belongs to (no "
        "global/pg_control beside its pg_wal, no segment archived yet); run wal-push from "
        "archive_command, in the data folder"
    )


def _store_once(
    destination: Destination, keyring: Keyring, pushed: _Pushed, expected: dict[str, str]
) -> str | None:
    """The key already holding this very content on `destination`, or None when it holds
    nothing under the name (or only a damaged object, which is replaced)."""
    key = find_key(destination, candidate_keys(pushed.system_id, pushed.name))
    if key is None:
        return None
    try:
        stored = read_whole(destination, key, keyring, expected)
    except IntegrityError:
        destination.delete(key)  # damaged: PostgreSQL still has the true file
        return None
    if stored.identity.get("sha256") == pushed.sha256:
        return key
    raise WalConflictError(
        f"{pushed.name.name}: {destination.name} already holds a different file under this "
        f"name (sha256 {stored.identity.get('sha256', '?')[:16]}…, this one "
        f"{pushed.sha256[:16]}…); two servers may be archiving into one repository. Nothing "
        "was overwritten; find which server owns this archive before archiving again"
    )


def push_wal(settings: Settings, path: Path, log: Callable[[str], None] = print) -> PushOutcome:
    if settings.browsing:
        raise ReadOnlyBrowseError("wal-push cannot write while browsing (BACKUP_BROWSE)")
    name = parse_name(path.name)
    data = read_wal_file(path)
    keyring = keyring_from_settings(settings)
    repository = repository_from_settings(settings)
    record = read_record(repository, keyring)
    system_id, magic = _system_id(path, name, data, record)
    codec, level = settings.wal_codec
    if record is not None:
        check_against(record, system_id, magic, name.name)
    if record is None or (record.wal_magic is None and magic is not None):
        write_record(repository, keyring, ArchiveRecord(system_id, magic), codec, level)
    pushed = _Pushed(name, data, hashlib.sha256(data).hexdigest(), system_id)
    repository_id = repository.ensure_repository_id()
    expected = wal_identity(repository_id, system_id, name)
    key = _store_once(repository, keyring, pushed, expected)
    outcome = PushOutcome(key or key_for(system_id, name, codec), key is not None)
    if key is None:
        identity = wal_identity(repository_id, system_id, name, pushed.sha256)
        metadata = {**identity, "kind": name.kind}
        seal_into(repository, outcome.key, data, keyring, identity, metadata, codec, level)
    destinations = copy_destinations(settings)
    if destinations:
        _copy(repository, destinations, keyring, pushed, expected, outcome)
    return outcome


def _copy(
    repository: Destination,
    destinations: list[Destination],
    keyring: Keyring,
    pushed: _Pushed,
    expected: dict[str, str],
    outcome: PushOutcome,
) -> None:
    # Imported here: it brings the alerts and the catalog, which a push without copies
    # need not pay for at every segment's start-up.
    from engines.repository.copies import bind_repository_id, copy_object

    for destination in destinations:
        bind_repository_id(repository, destination)
        if _store_once(destination, keyring, pushed, expected) is None:
            stat = repository.stat(outcome.key)
            if stat is None:
                raise JarvisError(f"{outcome.key}: vanished from the repository while copied")
            copy_object(repository, destination, stat, None, 0, stat.size)
            outcome.copied_to.append(destination.name)
