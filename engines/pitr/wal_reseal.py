"""Archived WAL sealed again under the current key (`rekey`), on one destination.

Each object under `wal/` whose container names another key is opened under the keyring
(the old key from BACKUP_ENCRYPTION_KEY_PREVIOUS), its sealed identity checked to be the
file its key names (repository, cluster, timeline, name) and every chunk authenticated
as it is read. Its compressed stream is carried over as it is (no recompression) into a
new container under the current key with the same identity (the content's sha256
included) and sealed metadata, staged beside it (in a folder of its own for S3), checked,
and put under the same key in one atomic write (a rename on this host, one PUT on S3)
that replaces the old object: at every moment the key holds one whole object, readable
under the old key or the new one. A run cut short (kill -9, a destination gone
read-only) leaves some under each; wal-fetch reads both; the next run seals the rest.

A wal-push running meanwhile seals under its own current key: BACKUP_ENCRYPTION_KEY of
the env file the archiver reads, the new key once it is rotated there. Its retries of
a segment already stored read either object. A segment pushed under the old key after
the listing (an archiver still given the old key as its current one) is found by the
last listing and named, so the old key is never called removable while WAL needs it;
the next run seals it again.
"""

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engines.destinations import Destination
from engines.errors import (
    IntegrityError,
    JarvisError,
    JobCancelledError,
    KeyNotAvailableError,
    NotFoundError,
)
from engines.pipeline.artifacts import Expected, check_resealed, reseal_artifact
from engines.pipeline.crypto import Keyring, read_header
from engines.pitr.archive_layout import (
    RECORD_STEM,
    SOURCE,
    WAL_FOLDER,
    candidate_keys,
    wal_identity,
)
from engines.pitr.archive_store import sealed_identity
from engines.pitr.wal_files import WalNameError, parse_name
from engines.plumbing.fsutil import fsync_directory, temporary_path_for
from engines.repository.stored import stored_bytes


@dataclass
class WalReseal:
    """What one destination's archived WAL came to."""

    destination: str
    resealed: list[str] = field(default_factory=list)
    remaining: list[tuple[str, str]] = field(default_factory=list)  # (key, key id)
    problems: list[str] = field(default_factory=list)


def _expected(key: str, repository_id: str | None) -> dict[str, str] | None:
    """The identity sealed into the object its key names; None for a key not ours."""
    parts = key.split("/")
    stem = parts[-1].split(".enc", 1)[0].rsplit(".", 1)[0]  # less the codec's suffix
    if parts == [WAL_FOLDER, parts[-1]] and stem == RECORD_STEM:
        identity = {"repository": repository_id or "", "source": SOURCE, "name": RECORD_STEM}
    else:
        try:
            name = parse_name(stem)
        except WalNameError:
            return None
        if len(parts) not in (3, 4) or not parts[1].isdigit():
            return None
        if key not in candidate_keys(int(parts[1]), name):
            return None  # in another timeline's folder: wal-fetch never reads it there
        identity = wal_identity(repository_id or "", int(parts[1]), name)
    if repository_id is None:
        del identity["repository"]
    return identity


def _key_id(destination: Destination, key: str) -> str | None:
    try:
        with destination.open_read(key) as handle:
            return read_header(handle, key)[0].key_id
    except (NotFoundError, FileNotFoundError):
        return None  # removed meanwhile (cleanup): nothing to seal
    except IntegrityError:
        return "damaged"  # its header: named, never sealed again


def _stale(destination: Destination, current: str) -> list[tuple[str, str]]:
    """(key, key id) of every archived object sealed under another key than `current`."""
    found = []
    for stored in destination.list(f"{WAL_FOLDER}/"):
        if not stored.key.endswith(".enc"):
            continue  # a writer's temporary
        key_id = _key_id(destination, stored.key)
        if key_id is not None and key_id != current:
            found.append((stored.key, key_id))
    return found


def reseal_wal(
    destination: Destination,
    keyring: Keyring,
    repository_id: str | None,
    *,
    dry_run: bool = False,
    check: Callable[[], None] = lambda: None,
) -> WalReseal:
    """Seal every archived object of `destination` under an old key again; then name what
    still is (pushed under an old key meanwhile, or not ours to check). `check` is called
    between objects (a cancelled job raises there)."""
    result = WalReseal(destination.name)
    current = keyring.current.key_id
    try:
        for key, _ in _stale(destination, current):
            check()
            if dry_run:
                result.resealed.append(key)
                continue
            expected = _expected(key, repository_id)
            if expected is None:
                continue  # not an archived file: left as it is, named below
            try:
                _reseal_one(destination, key, keyring, expected)
            except (IntegrityError, KeyNotAvailableError) as error:
                result.problems.append(f"{key} on {destination.name}: not sealed again ({error})")
                continue
            result.resealed.append(key)
        if not dry_run:
            result.remaining = _stale(destination, current)
    except JobCancelledError:
        raise
    except (JarvisError, OSError) as error:  # unreachable, read-only: the rest stays as it is
        result.problems.append(f"WAL on {destination.name}: not all sealed again ({error})")
        result.remaining = _stale_or_unknown(destination, current)
    return result


def _stale_or_unknown(destination: Destination, current: str) -> list[tuple[str, str]]:
    try:
        return _stale(destination, current)
    except (JarvisError, OSError):
        return [(f"{WAL_FOLDER}/ on {destination.name}", "unknown")]


def _reseal_one(destination: Destination, key: str, keyring: Keyring, expected: dict) -> None:
    identity = sealed_identity(destination, key, keyring)  # with the content's sha256
    path = destination.local_path(key)
    with _staging(path) as staged:
        reseal_artifact(
            stored_bytes(destination, key), keyring, Expected(expected), identity, staged
        )
        check_resealed(staged, keyring, identity, key)
        if path is None:
            destination.put(staged, key)  # one PUT replaces the old object
            return
        _keep_file_attributes(staged, path.stat())
        os.replace(staged, path)
        fsync_directory(path.parent)


@contextmanager
def _staging(path: Path | None) -> Iterator[Path]:
    """Where the new container is written and checked: beside the old file on this host
    (a temporary every writer's clean-up knows), else in a folder of its own."""
    if path is not None:
        staged = temporary_path_for(path)
        try:
            yield staged
        finally:
            staged.unlink(missing_ok=True)
        return
    with tempfile.TemporaryDirectory(prefix="jarvis-reseal-") as folder:
        yield Path(folder) / "staged"


def _keep_file_attributes(path: Path, before: os.stat_result) -> None:
    """The new file as the old one was: its owner and mode (wal-push runs as PostgreSQL's
    account and reads a stored segment again when the archiver retries it) and its time
    (`pitr timeline` reads when a segment was archived from it). Set before the rename,
    so the file under the key always has them."""
    if os.geteuid() == 0:
        os.chown(path, before.st_uid, before.st_gid)
    os.chmod(path, stat.S_IMODE(before.st_mode))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
