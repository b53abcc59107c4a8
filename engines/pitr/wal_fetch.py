"""`wal-fetch`: one file recovery asks for (`restore_command`), from the repository or,
failing that, a copy destination; authenticated and checked to be the file asked for
before a byte reaches the data folder, then written there atomically.

`WalMissingError` is the one outcome PostgreSQL takes as the end of the archive;
anything else (damaged, another cluster's, a renamed file, a key missing, I/O) must
stop recovery instead, and the command line says so with its own exit code.

`fetch_checked` is the one way a WAL file leaves the archive: the prefetch worker
(wal_prefetch.py) brings the next segments through it too.
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
class WalSources:
    """Where an archived file is looked for, in order (the repository, then each copy
    destination), and what it must prove to be: this cluster's file of the name asked for."""

    places: list[Destination]
    keyring: Keyring
    system_id: int


def wal_sources(settings: Settings, system_id: int) -> WalSources:
    places = [repository_from_settings(settings), *copy_destinations(settings)]
    return WalSources(places, keyring_from_settings(settings), system_id)


def fetch_checked(sources: WalSources, name: WalName) -> Fetched:
    """The file `name`, authenticated and checked (sealed identity, content hash, a
    segment's page header) from the first place that holds it whole. WalMissingError
    when no place has it; otherwise the first place's IntegrityError if none was whole."""
    repository = sources.places[0]
    keys = candidate_keys(sources.system_id, name)
    first_error: JarvisError | None = None
    for place in sources.places:
        key = find_key(place, keys)
        if key is None:
            continue
        repository_id = repository.repository_id() or place.repository_id()
        expected = wal_identity(repository_id or "", sources.system_id, name)
        if repository_id is None:
            del expected["repository"]
        try:
            return _checked(place, key, sources.keyring, expected, name, sources.system_id)
        except IntegrityError as error:  # damaged here: another copy may be whole
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    raise WalMissingError(f"{name.name}: not in the archive of cluster {sources.system_id}")


@dataclass(frozen=True)
class FetchResult:
    fetched: Fetched
    system_id: int


def fetch_wal(settings: Settings, name_text: str, dest: Path) -> FetchResult:
    name = parse_name(name_text)
    repository = repository_from_settings(settings)
    keyring = keyring_from_settings(settings)
    system_id = _system_id(dest, repository, keyring)
    sources = WalSources([repository, *copy_destinations(settings)], keyring, system_id)
    fetched = fetch_checked(sources, name)
    _write(dest, fetched.data)
    return FetchResult(fetched, system_id)


def _write(dest: Path, data: bytes) -> None:
    try:
        with atomic_output(dest) as output:
            output.write(data)
    except OSError as error:
        raise explain_os_error(error, where=dest) from None
