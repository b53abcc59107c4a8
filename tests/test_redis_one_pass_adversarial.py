"""`backup redis` against broken and hostile "servers" (tests/support/fake_redis.py: a
loopback socket answering SYNC with whatever the test crafts): one clear line, the
documented exit code, no traceback, nothing half stored, and the next backup succeeds."""

import pytest

from engines.plumbing.fsutil import TEMP_MARKER
from jarvis_tui.exit_codes import ExitCode
from tests.support import rdb_build as rb
from tests.support.fake_redis import FakeRedis, Transfer, diskless, sized
from tests.support.redis_seed import RedisCase

KEYS = 3000
PASSWORD = "fake-Hunter2-secret"


def _rdb(keys: int = KEYS) -> bytes:
    writer = rb.RdbWriter(10).aux(b"redis-ver", b"7.0.15")
    for i in range(keys):
        writer.key(b"key:%d" % i, rb.plain_string(b"value %d " % i * 4))
    return writer.end()


def _cut(data: bytes, keep: int, header: bytes) -> Transfer:
    """The connection dropped after `keep` bytes of the snapshot."""

    def transfer():
        yield header
        yield data[:keep]

    return transfer


@pytest.fixture
def fake():
    servers: list[FakeRedis] = []

    def serving(transfer: Transfer, **options) -> FakeRedis:
        server = FakeRedis(transfer, **options).start()
        servers.append(server)
        return server

    yield serving
    for server in servers:
        server.close()


def _case(tmp_path, server: FakeRedis) -> RedisCase:
    return RedisCase(tmp_path, None, url=server.url())


def _stored(case: RedisCase) -> list[str]:
    folder = case.tmp_path / "repo" / "redis"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _failed_and_cleaned(case: RedisCase) -> None:
    assert _stored(case) == []  # neither an artifact nor a temporary
    with case.workspace() as workspace:
        backup_set = workspace.catalog.list_backup_sets()[0]
        rows = workspace.catalog.artifacts_of(backup_set.id)
    assert backup_set.status == "failed"
    assert all(row.status == "failed" for row in rows)


def test_a_server_without_hello_gets_resp2_and_no_warning(tmp_path, isolated_env, fake, capsys):
    # Redis before 6 and many proxies know no HELLO: newer redis-py tried RESP3 first and
    # printed a warning of several lines on every connection.
    server = fake(diskless(_rdb(10)), keys=10, password=PASSWORD)
    case = _case(tmp_path, server)
    assert case.cli("backup", "redis") == ExitCode.OK
    err = capsys.readouterr().err
    assert "HELLO" not in err and "RESP" not in err
    assert not [c for c in server.commands if c[0].upper() == b"HELLO"]
    assert case.artifacts()["json"].metadata["keys"] == 10


@pytest.mark.parametrize(
    ("transfer", "received"),
    [
        (diskless(b""), 0),
        (sized(b""), 0),
        (sized(b"REDIS"), 5),
        (diskless(b"REDIS00a1" + bytes(9)), 18),
        (sized(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 40), 1120),
    ],
    ids=["empty-diskless", "empty-sized", "short", "version-not-digits", "http"],
)
def test_what_is_not_an_rdb_is_refused_with_one_line(
    tmp_path, isolated_env, fake, capsys, transfer, received
):
    # Before: the header was read only for the RDB's metadata, at the end, raising a bare
    # RdbFormatError: exit 70, "this is a bug".
    case = _case(tmp_path, fake(transfer, keys=1))
    assert case.cli("backup", "redis") == ExitCode.FAILED
    line = _one_line(capsys.readouterr().err)
    assert f"accepted SYNC but sent {received} bytes that are not an RDB snapshot" in line
    _failed_and_cleaned(case)
    case.point_at(None, url=fake(diskless(_rdb(5)), keys=5).url())
    assert case.cli("backup", "redis") == ExitCode.OK


@pytest.mark.parametrize("how", ["sized", "diskless"])
def test_a_connection_dropped_mid_snapshot_fails_with_one_line_and_stores_nothing(
    tmp_path, isolated_env, fake, capsys, how
):
    rdb = _rdb()
    header = b"$%d\r\n" % len(rdb) if how == "sized" else b"$EOF:" + b"m" * 40 + b"\r\n"
    keep = len(rdb) // 2
    case = _case(tmp_path, fake(_cut(rdb, keep, header), keys=KEYS))
    assert case.cli("backup", "redis") == ExitCode.FAILED
    line = _one_line(capsys.readouterr().err)
    held_back = 0 if how == "sized" else 40  # bytes that might have been the end mark
    assert f"closed the connection after {keep - held_back} bytes of the snapshot" in line
    _failed_and_cleaned(case)


def test_a_bad_checksum_fails_the_check_naming_what_redis_check_rdb_found(
    tmp_path, isolated_env, fake, capsys
):
    rdb = bytearray(_rdb())
    rdb[-1] ^= 1  # the CRC64's last byte
    case = _case(tmp_path, fake(diskless(bytes(rdb)), keys=KEYS))
    assert case.cli("backup", "redis") == ExitCode.INTEGRITY
    line = _one_line(capsys.readouterr().err)
    # Before: "redis-check-rdb rejected the RDB: --- RDB ERROR DETECTED ---".
    assert "redis-check-rdb rejected the RDB: [offset " in line
    assert "RDB CRC error (while doing: check-sum)" in line
    with case.workspace() as workspace:
        backup_set = workspace.catalog.list_backup_sets()[0]
        states = {a.mode: a.verify_state for a in workspace.catalog.artifacts_of(backup_set.id)}
    assert backup_set.status == "failed"
    assert states == {"rdb": "failed", "json": "ok"}
    assert not [name for name in _stored(case) if TEMP_MARKER in name]
