"""`wal-fetch`: one file recovery asks for (`restore_command`), from the repository or,
failing that, a copy destination; authenticated and checked to be the file asked for
before a byte reaches the data folder, then written there atomically.

`WalMissingError` is the one outcome PostgreSQL takes as the end of the archive;
anything else (damaged, another cluster's, a renamed file, a key missing, I/O) must
stop recovery instead, and the command line says so with its own exit code.
"""

from dataclasses import dataclass
from pathlib import Path

from engines.config import Settings
from engines.destinations import Destination, copy_destinations, repository_from_settings
from engines.errors import IntegrityError, JarvisError, NotFoundError
from engines.keys import keyring_from_settings
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_layout import candidate_keys, wal_identity
from engines.pitr.archive_record import read_record
from engines.pitr.archive_store import Fetched, find_key, read_whole
from engines.pitr.wal_files import (
    WalName,
    check_segment,
    control_file_system_id,
    parse_name,
)
from engines.pitr.wal_prefetch import spool
from engines.plumbing.fsutil import atomic_output
from engines.plumbing.os_errors import explain_os_error


class WalMissingError(NotFoundError):
    """The file is not in the archive (recovery ends here)."""


def _system_id(dest: Path, repository: Destination, keyring: Keyring) -> int:
    """The cluster being recovered: its data folder's pg_control (restore_command runs in
    it, and %p is pg_wal/...), else the archive's record."""
    for pgdata in (dest.absolute().parent.parent, Path.cwd()):
        found = control_file_system_id(pgdata)
        if found is not None:
            return found
    record = read_record(repository, keyring)
    if record is None:
        raise JarvisError(
            "no WAL archive in this repository yet (nothing was pushed), and no data folder "
            "names its cluster; check BACKUP_DIR and archive_command"
        )
    return record.system_id


def _checked(place: Destination, key: str, keyring: Keyring, expected: dict, name: WalName,
             system_id: int) -> Fetched:  # fmt: skip
    fetched = read_whole(place, key, keyring, expected)
    if name.is_segment and check_segment(fetched.data, name, key).system_id != system_id:
        raise IntegrityError(f"{key}: its pages belong to another cluster than {system_id}")
    return fetched


@dataclass(frozen=True)
class FetchResult:
    fetched: Fetched
    system_id: int
    from_afar: bool  # read from a copy destination or the prefetch spool: prefetch on


def fetch_wal(settings: Settings, name_text: str, dest: Path) -> FetchResult:
    name = parse_name(name_text)
    keyring = keyring_from_settings(settings)
    repository = repository_from_settings(settings)
    system_id = _system_id(dest, repository, keyring)
    keys = candidate_keys(system_id, name)
    spooled = spool(settings)
    first_error: JarvisError | None = None
    for place in [spooled, repository, *copy_destinations(settings)]:
        key = find_key(place, keys)
        if key is None:
            continue
        repository_id = repository.repository_id() or place.repository_id()
        expected = wal_identity(repository_id or "", system_id, name)
        if repository_id is None:
            del expected["repository"]
        try:
            fetched = _checked(place, key, keyring, expected, name, system_id)
        except IntegrityError as error:  # damaged here: another copy may be whole
            if place is spooled:
                spooled.delete(key)
            else:
                first_error = first_error or error
            continue
        _write(dest, fetched.data)
        if place is spooled:
            spooled.delete(key)
        return FetchResult(fetched, system_id, place is not repository)
    if first_error is not None:
        raise first_error
    raise WalMissingError(f"{name.name}: not in the archive of cluster {system_id}")


def _write(dest: Path, data: bytes) -> None:
    try:
        with atomic_output(dest) as output:
            output.write(data)
    except OSError as error:
        raise explain_os_error(error, where=dest) from None
