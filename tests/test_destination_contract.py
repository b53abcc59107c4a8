"""The contract every destination passes (restic's backend/test/suite.go): streams in and
out, ranged reads, listings, stat, delete, key rules, probe and the repository id.

A destination joins by a line in `DESTINATION_FACTORIES`; the first test fails until
every kind registered in `DESTINATION_KINDS` has one. What only a folder on this host
has (file modes, folders made and tidied) stays in tests/test_local_destination.py.
"""

import contextlib
import dataclasses
import functools
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engines.destinations import DESTINATION_KINDS, Destination, InvalidKeyError, LocalRepository
from engines.destinations.s3 import S3Destination
from engines.errors import NotFoundError
from engines.plumbing.fsutil import TEMP_MARKER
from tests.support.file_systems import needs_root, remount_read_only, tmpfs
from tests.support.s3 import S3Server
from tests.support.s3_read_only import ReadOnlyS3Proxy


@dataclass(frozen=True)
class DestinationFactory:
    """How the suite makes a destination of one kind, in a test's `tmp_path`."""

    # An empty destination that can be written.
    fresh: Callable[[Path], Destination]
    # One whose place does not exist (an unmounted disk, a missing bucket).
    missing: Callable[[Path], Destination]
    # One that exists and cannot be written, for as long as the context lasts.
    read_only: Callable[[Path], contextlib.AbstractContextManager[Destination]]
    # The session fixture of the server the destination lives on, given to each
    # callable as `server=` (none for a folder).
    server_fixture: str | None = None


@contextlib.contextmanager
def _read_only_local(tmp_path: Path) -> Iterator[Destination]:
    # A real read-only file system: chmod means nothing to root, who runs these tests.
    with tmpfs(tmp_path / "mounted", "1m") as folder:
        repository = LocalRepository(folder / "repository")
        repository.ensure_repository_id()
        remount_read_only(folder)
        yield repository


def _s3_destination(server: S3Server, bucket: str, tmp_path: Path, endpoint_url=None):
    return S3Destination(
        bucket,
        prefix="hosts/contract",  # keys live under S3_PREFIX, as they will in use
        region=server.region,
        endpoint_url=endpoint_url or server.endpoint_url,
        access_key=server.access_key,
        secret_key=server.secret_key,
        spool_dir=tmp_path / "s3-spool",
    )


def _fresh_s3(tmp_path: Path, *, server: S3Server) -> Destination:
    # A bucket of its own per test: the session's server is shared.
    bucket = server.create_bucket(f"contract-{secrets.token_hex(6)}")
    return _s3_destination(server, bucket, tmp_path)


def _missing_s3(tmp_path: Path, *, server: S3Server) -> Destination:
    return _s3_destination(server, "no-such-bucket-here", tmp_path)


@contextlib.contextmanager
def _read_only_s3(tmp_path: Path, *, server: S3Server) -> Iterator[Destination]:
    # Credentials that may only read, as a proxy that refuses every write.
    writable = _fresh_s3(tmp_path, server=server)
    writable.ensure_repository_id()
    with ReadOnlyS3Proxy(server.endpoint_url) as proxy:
        yield _s3_destination(server, writable.bucket, tmp_path, proxy.endpoint_url)


DESTINATION_FACTORIES: dict[str, DestinationFactory] = {
    "local": DestinationFactory(
        fresh=lambda tmp_path: LocalRepository(tmp_path / "repository"),
        missing=lambda tmp_path: LocalRepository(tmp_path / "not-mounted" / "repository"),
        read_only=_read_only_local,
    ),
    "s3": DestinationFactory(
        fresh=_fresh_s3,
        missing=_missing_s3,
        read_only=_read_only_s3,
        server_fixture="s3_server",
    ),
}


@pytest.fixture(params=sorted(DESTINATION_FACTORIES))
def factory(request) -> DestinationFactory:
    chosen = DESTINATION_FACTORIES[request.param]
    if chosen.server_fixture is None:
        return chosen
    server = request.getfixturevalue(chosen.server_fixture)
    return dataclasses.replace(
        chosen,
        fresh=functools.partial(chosen.fresh, server=server),
        missing=functools.partial(chosen.missing, server=server),
        read_only=functools.partial(chosen.read_only, server=server),
    )


@pytest.fixture
def destination(factory: DestinationFactory, tmp_path: Path) -> Destination:
    return factory.fresh(tmp_path)


def _write(destination: Destination, key: str, content: bytes) -> None:
    with destination.open_write(key) as output:
        output.write(content)


def _read(destination: Destination, key: str, offset: int = 0, length: int | None = None):
    with destination.open_read(key, offset, length) as handle:
        return handle.read()


def test_every_registered_destination_kind_runs_this_suite():
    assert set(DESTINATION_FACTORIES) == set(DESTINATION_KINDS)


def test_open_write_then_open_read_round_trips_bytes(destination: Destination):
    content = os.urandom(3 * 1024 * 1024 + 17)
    with destination.open_write("postgres/a.dump.gz.enc") as output:
        for start in range(0, len(content), 1 << 20):
            output.write(content[start : start + (1 << 20)])
    assert _read(destination, "postgres/a.dump.gz.enc") == content
    assert destination.stat("postgres/a.dump.gz.enc").size == len(content)


def test_put_and_get_round_trip_through_local_files(destination: Destination, tmp_path: Path):
    source = tmp_path / "dump"
    source.write_bytes(b"a dump" * 1000)
    destination.put(source, "redis/dump.rdb.gz.enc")
    restored = tmp_path / "restore" / "dump.rdb"
    destination.get("redis/dump.rdb.gz.enc", restored)
    assert restored.read_bytes() == source.read_bytes()


def test_an_error_inside_open_write_leaves_nothing_new(destination: Destination):
    with pytest.raises(RuntimeError), destination.open_write("postgres/a.gz.enc") as output:
        output.write(b"half of it")
        raise RuntimeError("the dump failed")
    assert destination.stat("postgres/a.gz.enc") is None
    assert list(destination.list()) == []
    with pytest.raises(NotFoundError):
        _read(destination, "postgres/a.gz.enc")


def test_an_error_inside_open_write_keeps_the_older_object(destination: Destination):
    _write(destination, "postgres/a.gz.enc", b"previous backup")
    with pytest.raises(RuntimeError), destination.open_write("postgres/a.gz.enc") as output:
        output.write(b"the new one, cut short")
        raise RuntimeError("the dump failed")
    assert _read(destination, "postgres/a.gz.enc") == b"previous backup"
    assert [o.key for o in destination.list()] == ["postgres/a.gz.enc"]


def test_a_completed_write_replaces_the_object_whole(destination: Destination):
    _write(destination, "postgres/a.gz.enc", b"old" * 1000)
    _write(destination, "postgres/a.gz.enc", b"new")
    assert _read(destination, "postgres/a.gz.enc") == b"new"
    assert destination.stat("postgres/a.gz.enc").size == 3


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, b"0123456789"),
        (3, None, b"3456789"),
        (0, 4, b"0123"),
        (2, 5, b"23456"),
        (8, 10, b"89"),  # a range past the end stops at the end
        (10, None, b""),
        (4, 0, b""),
    ],
)
def test_open_read_serves_ranges(destination: Destination, offset, length, expected):
    _write(destination, "files/packs/ab/pack-1", b"0123456789")
    assert _read(destination, "files/packs/ab/pack-1", offset, length) == expected


def test_a_ranged_read_can_be_read_in_pieces(destination: Destination):
    _write(destination, "files/packs/ab/pack-1", bytes(range(256)) * 64)
    with destination.open_read("files/packs/ab/pack-1", 100, 1000) as handle:
        pieces = [handle.read(300) for _ in range(5)]
    assert b"".join(pieces) == (bytes(range(256)) * 64)[100:1100]
    assert [len(p) for p in pieces] == [300, 300, 300, 100, 0]


def test_a_whole_object_stream_seeks_as_readers_need(destination: Destination):
    content = bytes(range(256)) * 64
    _write(destination, "postgres/a.gz.enc", content)
    with destination.open_read("postgres/a.gz.enc") as handle:
        assert handle.read(9) == content[:9]
        handle.seek(0)
        assert handle.read(4) == content[:4]
        handle.seek(1000, os.SEEK_CUR)
        assert handle.tell() == 1004
        assert handle.read() == content[1004:]


def test_reading_a_missing_key_names_it(destination: Destination, tmp_path: Path):
    with pytest.raises(NotFoundError, match=r"postgres/gone\.gz\.enc"):
        _read(destination, "postgres/gone.gz.enc")
    target = tmp_path / "new-folder" / "restored"
    with pytest.raises(NotFoundError, match=r"postgres/gone\.gz\.enc"):
        destination.get("postgres/gone.gz.enc", target)
    assert not target.exists()


def test_listing_is_in_key_order_and_filters_by_prefix(destination: Destination):
    keys = ["postgres/b.gz.enc", "postgres/a/nested", "postgres.txt", "wal/0001", "redis/r"]
    for key in keys:
        _write(destination, key, b"12345")

    assert [o.key for o in destination.list()] == sorted(keys)
    assert [o.key for o in destination.list("postgres/")] == [
        "postgres/a/nested",
        "postgres/b.gz.enc",
    ]
    assert [o.key for o in destination.list("postgres")] == [
        "postgres.txt",
        "postgres/a/nested",
        "postgres/b.gz.enc",
    ]
    assert [o.key for o in destination.list("postgres/b")] == ["postgres/b.gz.enc"]
    assert list(destination.list("secrets/")) == []
    assert list(destination.list("nothing/here/")) == []
    with pytest.raises(InvalidKeyError, match="prefix"):
        list(destination.list("../"))


def test_stat_describes_an_object_as_the_listing_does(destination: Destination):
    _write(destination, "wal/0001", b"12345")
    [listed] = destination.list("wal/")
    assert (listed.key, listed.size) == ("wal/0001", 5)
    assert listed.modified.tzinfo is UTC
    assert abs(datetime.now(UTC) - listed.modified) < timedelta(minutes=1)
    assert destination.stat("wal/0001") == listed


def test_stat_is_none_for_missing_keys_and_for_prefixes(destination: Destination):
    _write(destination, "postgres/a/b", b"x")
    assert destination.stat("postgres/missing") is None
    assert destination.stat("postgres") is None
    assert destination.stat("postgres/a") is None


def test_delete_removes_and_an_absent_key_is_no_error(destination: Destination):
    _write(destination, "files/snap/1/pack", b"x")
    _write(destination, "files/snap/2/pack", b"y")
    destination.delete("files/snap/1/pack")
    assert destination.stat("files/snap/1/pack") is None
    assert [o.key for o in destination.list()] == ["files/snap/2/pack"]
    destination.delete("files/snap/1/pack")  # absent: nothing to do, as on S3
    destination.delete("never/written")
    destination.delete("files")  # a prefix is no object
    assert [o.key for o in destination.list()] == ["files/snap/2/pack"]


@pytest.mark.parametrize(
    "key",
    [
        "/etc/passwd",
        "../escape",
        "postgres/../../escape",
        "",
        "postgres//x",
        "./postgres/x",
        "postgres/",
        ".lock",
        "postgres/.hidden",
        f"postgres/x{TEMP_MARKER}1-ab",
        "win\\path",
    ],
)
def test_invalid_keys_are_refused_by_name_and_change_nothing(
    destination: Destination, tmp_path: Path, key: str
):
    _write(destination, "postgres/kept", b"x")
    source = tmp_path / "x"
    source.write_bytes(b"x")
    for attempt in (
        lambda: destination.put(source, key),
        lambda: destination.open_write(key).__enter__(),
        lambda: destination.open_read(key),
        lambda: destination.get(key, tmp_path / "y"),
        lambda: destination.delete(key),
        lambda: destination.stat(key),
    ):
        with pytest.raises(InvalidKeyError, match="invalid repository key") as refused:
            attempt()
        assert repr(key) in str(refused.value)
        assert isinstance(refused.value, ValueError)
    assert [o.key for o in destination.list()] == ["postgres/kept"]
    assert not (tmp_path / "y").exists()


def test_the_repository_id_is_made_once_and_kept(destination: Destination):
    assert destination.repository_id() is None
    made = destination.ensure_repository_id()
    assert len(made) == 32 and int(made, 16) >= 0
    assert destination.ensure_repository_id() == made == destination.repository_id()
    assert list(destination.list()) == []  # the id is the repository's own, not an object


def test_an_adopted_repository_id_is_kept_and_never_replaces_one_stored(
    destination: Destination,
):
    adopted = "0123456789abcdef" * 2
    assert destination.ensure_repository_id(adopted) == adopted == destination.repository_id()
    assert destination.ensure_repository_id("f" * 32) == adopted  # the first id stays
    assert list(destination.list()) == []


def test_probe_of_a_usable_destination_finds_nothing_and_changes_nothing(
    destination: Destination,
):
    destination.ensure_repository_id()
    assert list(destination.probe()) == []
    assert list(destination.list()) == []


def test_probe_of_a_missing_destination_names_the_problem(
    factory: DestinationFactory, tmp_path: Path
):
    problems = list(factory.missing(tmp_path).probe())
    assert len(problems) == 1 and problems[0].strip()
    assert list(factory.missing(tmp_path).list()) == []


@needs_root
def test_probe_of_a_read_only_destination_names_the_problem(
    factory: DestinationFactory, tmp_path: Path
):
    with factory.read_only(tmp_path) as destination:
        problems = list(destination.probe())
        assert len(problems) == 1 and "read-only" in problems[0].lower()
        with pytest.raises(OSError), destination.open_write("postgres/a.gz.enc") as output:
            output.write(b"x")
        assert destination.stat("postgres/a.gz.enc") is None
        assert destination.repository_id() is not None  # reads still work
