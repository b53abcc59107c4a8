"""engines/pitr/wal_reseal.py on a repository of sealed WAL objects (no cluster: the real
archive is tests/test_pitr_rekey_wal.py's): a rekey cancelled between objects stops there,
every file still readable under one key or the other; a renamed (forged) or truncated
object is named and never sealed again; a dry run changes nothing."""

import hashlib
import os
import shutil

import pytest

from engines.destinations.local import LocalRepository
from engines.errors import JobCancelledError
from engines.pipeline.crypto import Keyring, MasterKey, generate_key_hex
from engines.pitr.archive_layout import key_for, wal_identity
from engines.pitr.archive_store import read_whole, seal_into
from engines.pitr.wal_files import parse_name
from engines.pitr.wal_reseal import reseal_wal

SYSTEM_ID = 7000000000000000001
OLD, NEW = MasterKey.from_hex(generate_key_hex()), MasterKey.from_hex(generate_key_hex())
ROTATED = Keyring(NEW, (OLD,))


def _archive(tmp_path, count: int = 4) -> tuple[LocalRepository, str, dict[str, bytes]]:
    repository = LocalRepository(tmp_path / "repository")
    repository_id = repository.ensure_repository_id()
    files = {}
    for number in range(1, count + 1):
        name = parse_name(f"0000000100000000000000{number:02X}")
        data = os.urandom(1000) + bytes(64 * 1024)
        identity = wal_identity(repository_id, SYSTEM_ID, name, hashlib.sha256(data).hexdigest())
        key = key_for(SYSTEM_ID, name, "zstd")
        seal_into(repository, key, data, Keyring(OLD), identity, {**identity}, "zstd", 1)
        files[key] = data
    history = parse_name("00000002.history")  # directly under the cluster's folder
    data = b"1\t0/3000000\tno recovery target specified\n"
    identity = wal_identity(repository_id, SYSTEM_ID, history, hashlib.sha256(data).hexdigest())
    key = key_for(SYSTEM_ID, history, "zstd")
    seal_into(repository, key, data, Keyring(OLD), identity, {**identity}, "zstd", 1)
    files[key] = data
    return repository, repository_id, files


def _key_ids(repository: LocalRepository) -> dict[str, str]:
    return {
        stored.key: repository.local_path(stored.key).read_bytes()[10:18].hex()
        for stored in repository.list("wal/")
    }


def _readable(repository: LocalRepository, repository_id: str, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        name = parse_name(key.rsplit("/", 1)[-1].split(".zst")[0])
        expected = wal_identity(repository_id, SYSTEM_ID, name)
        assert read_whole(repository, key, ROTATED, expected).data == data


def test_a_cancelled_reseal_stops_between_files_and_the_next_finishes(tmp_path) -> None:
    repository, repository_id, files = _archive(tmp_path)
    calls = []

    def cancel_at_the_third() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise JobCancelledError("cancelled by request")

    with pytest.raises(JobCancelledError):
        reseal_wal(repository, ROTATED, repository_id, check=cancel_at_the_third)
    assert sorted(_key_ids(repository).values()) == sorted([NEW.key_id] * 2 + [OLD.key_id] * 3)
    _readable(repository, repository_id, files)
    result = reseal_wal(repository, ROTATED, repository_id)
    assert len(result.resealed) == 3 and result.remaining == [] and result.problems == []
    assert set(_key_ids(repository).values()) == {NEW.key_id}
    _readable(repository, repository_id, files)


def test_forged_and_truncated_objects_are_named_and_left_as_they_are(tmp_path) -> None:
    repository, repository_id, files = _archive(tmp_path)
    keys = sorted(key for key in files if "history" not in key)
    forged = keys[0].replace("000000010000000000000001", "0000000100000000000000AA")
    shutil.copy(repository.local_path(keys[1]), repository.local_path(keys[0]).with_name(
        forged.rsplit("/", 1)[-1]
    ))  # fmt: skip
    truncated = repository.local_path(keys[2])
    truncated.write_bytes(truncated.read_bytes()[:-100])
    dry = reseal_wal(repository, ROTATED, repository_id, dry_run=True)
    assert len(dry.resealed) == 6 and set(_key_ids(repository).values()) == {OLD.key_id}
    result = reseal_wal(repository, ROTATED, repository_id)
    history = next(key for key in files if "history" in key)
    assert sorted(result.resealed) == sorted([keys[0], keys[1], keys[3], history])
    assert sorted(key for key, _ in result.remaining) == sorted([forged, keys[2]])
    assert len(result.problems) == 2
    assert all(" on local: not sealed again (" in problem for problem in result.problems)
    assert _key_ids(repository)[forged] == OLD.key_id
    _readable(repository, repository_id, {k: files[k] for k in (keys[0], keys[1], keys[3])})
