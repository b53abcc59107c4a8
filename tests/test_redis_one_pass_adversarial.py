"""`backup redis` against broken and hostile "servers" (tests/support/fake_redis.py: a
loopback socket answering SYNC with whatever the test crafts): one clear line, the
documented exit code, no traceback, nothing half stored, and the next backup succeeds."""

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.catalog import Catalog
from engines.errors import JobCancelledError
from engines.pipeline.artifacts import read_sidecar, write_artifact
from engines.pipeline.crypto import Keyring, MasterKey
from engines.plumbing.fsutil import TEMP_MARKER
from engines.redis import json_format, rdb_format, snapshot_store
from engines.redis.verify import check_artifact
from engines.repository.resolve import ResolvedArtifact
from jarvis_tui.exit_codes import ExitCode
from tests.support import rdb_build as rb
from tests.support.fake_redis import FakeRedis, Transfer, diskless, sized
from tests.support.file_systems import needs_root
from tests.support.processes import wait_until
from tests.support.redis_seed import KEY, BackupInThread, RedisCase

CLI = Path(sys.executable).with_name("jarvis-tui")
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


def _slow(rdb: bytes, seconds: float) -> Transfer:
    """Diskless, the snapshot spread over about `seconds`."""
    pieces = 40
    step = -(-len(rdb) // pieces)

    def transfer():
        mark = b"m" * 40
        yield b"$EOF:" + mark + b"\r\n"
        for start in range(0, len(rdb), step):
            time.sleep(seconds / pieces)
            yield rdb[start : start + step]
        yield mark

    return transfer


def _complete_and_checked_or_gone(case: RedisCase) -> None:
    """Every set is complete with both artifacts checked, or failed with nothing stored."""
    stored = set(_stored(case))
    assert not [name for name in stored if TEMP_MARKER in name]
    with case.workspace() as workspace:
        for backup_set in workspace.catalog.list_backup_sets():
            rows = workspace.catalog.artifacts_of(backup_set.id)
            names = {row.relpath.split("/")[-1] for row in rows}
            if backup_set.status == "complete":
                assert sorted(row.mode for row in rows) == ["json", "rdb"]
                assert all(row.verify_state == "ok" for row in rows)
                assert names <= stored
            else:
                assert all(row.status == "failed" for row in rows)
                assert not names & stored


@pytest.mark.parametrize("after_s", [0.0, 0.25, 0.7, 1.3, 2.0])
def test_cancelled_at_any_moment_leaves_complete_sets_or_nothing(
    tmp_path, isolated_env, fake, after_s
):
    rdb = _rdb()
    case = _case(tmp_path, fake(_slow(rdb, 1.0), keys=KEYS))
    job = BackupInThread(case).start()
    wait_until(lambda: bool(job.contexts), 30, "the job to start")
    time.sleep(after_s)
    job.cancel()
    job.thread.join(60)
    assert not job.thread.is_alive()
    assert not job.outcome or isinstance(job.outcome[0], JobCancelledError)
    _complete_and_checked_or_gone(case)
    assert case.cli("backup", "redis") == ExitCode.OK
    _complete_and_checked_or_gone(case)


@pytest.mark.parametrize("after_s", [0.4, 1.0, 1.8])
def test_killed_at_any_moment_the_next_backup_cleans_up(tmp_path, isolated_env, fake, after_s):
    rdb = _rdb()
    server = fake(_slow(rdb, 1.5), keys=KEYS)
    case = _case(tmp_path, server)
    server.transfer, slow = diskless(rdb), server.transfer
    assert case.cli("backup", "redis") == ExitCode.OK  # an earlier backup, kept intact
    server.transfer = slow
    backing_up = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "backup", "redis"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(after_s)
    os.kill(backing_up.pid, signal.SIGKILL)
    backing_up.wait()
    server.transfer = diskless(rdb)
    assert case.cli("backup", "redis") == ExitCode.OK
    _complete_and_checked_or_gone(case)
    assert case.cli("verify", "--all") == ExitCode.OK


@needs_root
def test_a_repository_made_read_only_mid_backup_fails_it_and_the_next_cleans_up(
    tmp_path, isolated_env, fake, capsys
):
    rdb = _rdb()
    server = fake(diskless(rdb), keys=KEYS)
    case = _case(tmp_path, server)
    assert case.cli("backup", "redis") == ExitCode.OK
    folders = [str(tmp_path / "repo" / name) for name in ("redis", "sets")]
    server.transfer = _slow(rdb, 1.5)
    capsys.readouterr()
    backing_up = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "backup", "redis"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len([n for n in _stored(case) if TEMP_MARKER in n]) == 2, 30,
               "both artifacts to be written")  # fmt: skip
    if subprocess.run(["chattr", "+i", *folders], capture_output=True).returncode != 0:
        backing_up.kill()
        backing_up.wait()
        pytest.skip("chattr +i is not available on this file system")
    try:
        _, err = backing_up.communicate(timeout=60)
    finally:
        subprocess.run(["chattr", "-i", *folders], check=True)
    assert backing_up.returncode == ExitCode.FAILED
    assert "permission denied" in _one_line(err)
    server.transfer = diskless(rdb)
    assert case.cli("backup", "redis") == ExitCode.OK
    _complete_and_checked_or_gone(case)
    assert case.cli("verify", "--all") == ExitCode.OK


@pytest.mark.parametrize(
    "url",
    ["redis://:sec/ret-Pw@127.0.0.1:6379/0", "redis://:sec?ret-Pw@127.0.0.1:6379/0",
     "redis://:sec#ret-Pw@127.0.0.1:6379/0", "redis://:secret-Pw@[::1/0"],
    ids=["slash", "question-mark", "hash", "open-bracket"],
)  # fmt: skip
def test_a_redis_url_that_cannot_be_parsed_never_shows_the_password(
    tmp_path, isolated_env, capsys, url
):
    # Before: "Port could not be cast to integer value as 'sec'" (the password's start),
    # and for the bracket exit 70 "this is a bug".
    case = RedisCase(tmp_path, None, url=url)
    assert case.cli("backup", "redis") == ExitCode.INVALID_SETTINGS
    err = capsys.readouterr().err
    assert "sec" not in err and "Traceback" not in err
    assert "REDIS_URL" in err and "must be percent-encoded" in err


def test_a_unix_socket_url_is_accepted(tmp_path, isolated_env, fake):
    # Documented in engines/redis/connection.py; before, the settings refused any URL
    # without a host ("expected a redis or rediss or unix URL").
    server = fake(diskless(_rdb(10)), keys=10, unix_path=str(tmp_path / "redis.sock"))
    case = _case(tmp_path, server)
    assert case.cli("backup", "redis") == ExitCode.OK
    assert case.artifacts()["json"].metadata["keys"] == 10


def _keep_alives_forever() -> Transfer:
    """A server preparing a snapshot that never comes: a newline every 0.2 s."""

    def transfer():
        while True:
            yield b"\n"
            time.sleep(0.2)

    return transfer


def _stalled(rdb: bytes) -> Transfer:
    """Half the snapshot, then silence (the connection stays open)."""

    def transfer():
        yield b"$%d\r\n" % len(rdb)
        yield rdb[: len(rdb) // 2]
        time.sleep(30)

    return transfer


def _cancelled_within(case: RedisCase, seconds: float) -> None:
    job = BackupInThread(case).start()
    wait_until(lambda: bool(job.contexts), 30, "the job to start")
    time.sleep(1.0)  # waiting for the snapshot by now
    job.cancel()
    job.thread.join(seconds)
    assert not job.thread.is_alive(), f"still waiting {seconds} s after the cancellation"
    assert len(job.outcome) == 1 and isinstance(job.outcome[0], JobCancelledError)


@pytest.mark.parametrize("waiting", ["for-the-snapshot", "in-a-stalled-transfer"])
def test_a_backup_waiting_on_the_server_can_be_cancelled(tmp_path, isolated_env, fake, waiting):
    # Before: the SYNC header was read with the 90 s silence timeout, which every
    # keep-alive newline restarted, so a cancelled backup waited as long as the server
    # prepared (or never finished) its snapshot; a stalled transfer, 90 s.
    transfer = _keep_alives_forever() if waiting == "for-the-snapshot" else _stalled(_rdb())
    case = _case(tmp_path, fake(transfer, keys=KEYS))
    _cancelled_within(case, 5)
    assert _stored(case) == []


def test_an_endless_answer_to_sync_is_refused_without_holding_it(
    tmp_path, isolated_env, fake, capsys
):
    def endless():
        while True:
            yield b"x" * 65536

    case = _case(tmp_path, fake(endless, keys=1))
    assert case.cli("backup", "redis") == ExitCode.FAILED
    assert "unexpected SYNC answer" in _one_line(capsys.readouterr().err)


def test_a_json_artifact_nested_too_deeply_fails_its_check_with_the_line(tmp_path):
    # Sealed with the right key (so only its content is wrong): Python's json gives up
    # with RecursionError, which escaped the reader (verify and restore: exit 70).
    header = json_format.dumps(json_format.header("7.0.15", 1, "2026-12-06T00:00:00+00:00"))
    fine = b'{"db":0,"key":"k","type":"list","value":["a"]}\n'
    deep = b'{"db":0,"key":"d","type":"list","value":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    path = tmp_path / "deep_redis.json.gz.enc"
    keyring = Keyring(MasterKey.from_hex(KEY), ())
    metadata = {"source": "redis", "type": "redis", "mode": "json", "content": "json"}
    write_artifact([header + fine * 2 + deep], path, keyring, metadata)
    check = check_artifact(ResolvedArtifact(path, None, read_sidecar(path)), keyring)
    assert not check.ok
    assert check.detail == "line 4: not valid JSON (nested too deeply)"


def test_a_server_echoing_the_password_never_gets_it_into_the_metadata(
    tmp_path, isolated_env, fake, capsys
):
    # The refusal went as it came into json_source_reason and rdb_snapshot: the sidecar
    # (plain text, copied wherever the repository goes) and the sealed metadata.
    refusal = f"ERR replication refused for default:{PASSWORD}"
    server = fake(diskless(b""), keys=1, password=PASSWORD, refuse_sync=refusal)
    case = _case(tmp_path, server)
    assert case.cli("backup", "redis") == ExitCode.OK
    meta = case.artifacts()["json"].metadata
    assert meta["json_source"] == "scan"
    assert (
        meta["json_source_reason"]
        == "the server refused SYNC: ERR replication refused for default:****"
    )
    # Repository, catalog (and its WAL), logs: everything written but the settings file.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != case.env_file]
    assert len(written) > 5
    assert not [p for p in written if PASSWORD.encode() in p.read_bytes()]
    assert not [p for p in written if KEY.encode() in p.read_bytes().lower()]  # nor the key
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err


def test_keys_expired_at_the_snapshot_are_in_the_json_and_restored_by_neither(
    tmp_path, isolated_env, fake, spare_redis_server, capsys
):
    # A key past its expiry that Redis had not yet evicted is in the RDB: the JSON holds it
    # as the RDB does (its expiry in the past), and both restores skip it.
    moment_ms = 1_765_000_000_000  # the fake server's TIME
    writer = rb.RdbWriter(10).aux(b"redis-ver", b"7.0.15")
    writer.key(b"gone", rb.plain_string(b"x"), expires_ms=moment_ms - 1000)
    writer.key(b"gone:s", rb.linked_list([b"a"], rdb_type=1), expires_s=1_700_000_000)
    writer.key(b"kept", rb.plain_string(b"y"), expires_ms=4_102_444_800_000)
    writer.key(b"plain", rb.plain_string(b"z"))
    case = _case(tmp_path, fake(diskless(writer.end()), keys=4))
    assert case.cli("backup", "redis") == ExitCode.OK
    artifacts = case.artifacts()
    assert artifacts["json"].metadata["keys"] == artifacts["rdb"].metadata["keys"] == 4
    assert artifacts["json"].metadata["keys_with_ttl"] == 3
    target = spare_redis_server
    case.point_at(target)
    for extra in ([], ["--from-json"]):
        target.flush()
        capsys.readouterr()
        assert case.cli("restore", "redis", "latest", "--flush", *extra) == ExitCode.OK
        assert "2 keys skipped: already expired" in capsys.readouterr().out
        assert sorted(target.client().keys()) == [b"kept", b"plain"]
        assert target.client().execute_command("PEXPIRETIME", "kept") == 4_102_444_800_000


def test_a_backup_process_waiting_for_the_snapshot_ends_when_the_console_cancels_it(
    tmp_path, isolated_env, fake
):
    # The console cancels another process's job through the catalog.
    case = _case(tmp_path, fake(_keep_alives_forever(), keys=1))
    backing_up = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "backup", "redis"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Catalog.open(tmp_path / "catalog.sqlite3") as catalog:
            wait_until(lambda: bool(catalog.list_jobs()), 30, "the job to start")
            time.sleep(1.0)  # waiting for the snapshot by now
            assert catalog.request_job_cancel(catalog.list_jobs()[0].id)
        _, err = backing_up.communicate(timeout=10)
    finally:
        backing_up.kill()
        backing_up.wait()
    assert backing_up.returncode == ExitCode.CANCELLED
    assert "cancel" in _one_line(err)
    assert _stored(case) == []


def test_a_json_side_failing_after_the_rdb_was_stored_takes_the_rdb_away_too(
    tmp_path, isolated_env, fake, monkeypatch, capsys
):
    # Fault injected at the JSON store's very end (its metadata is asked for after its
    # last byte, when the RDB has been stored): the disk filling up right then.
    def no_space(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot_store._JsonFromWalk, "_metadata", no_space)
    case = _case(tmp_path, fake(diskless(_rdb()), keys=KEYS))
    assert case.cli("backup", "redis") == ExitCode.NO_SPACE
    assert "no space left" in _one_line(capsys.readouterr().err)
    # Before: the RDB stayed stored and 'complete' in the failed set, never checked (a
    # partial `backup full` set then offered it to `restore redis latest`).
    _failed_and_cleaned(case)
    monkeypatch.undo()
    assert case.cli("backup", "redis") == ExitCode.OK
    _complete_and_checked_or_gone(case)


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        (b"INFO", _bulk(b"# Keyspace\r\ndb0:keys=abc,expires=0\r\n")),
        (b"INFO", _bulk(b"# Keyspace\r\ndbx:keys=1,expires=0\r\n")),
        (b"TIME", b"*2\r\n$4\r\nsoon\r\n$1\r\n0\r\n"),
    ],
    ids=["keys-not-a-number", "database-not-a-number", "time-not-a-number"],
)
def test_answers_no_redis_gives_are_one_line_not_a_bug_report(
    tmp_path, isolated_env, fake, capsys, command, answer
):
    # Before: "unexpected error (ValueError: invalid literal for int() ...); this is a
    # bug" (exit 70).
    server = fake(diskless(_rdb(1)), keys=1, answers={command: answer})
    case = _case(tmp_path, server)
    assert case.cli("backup", "redis") == ExitCode.FAILED
    line = _one_line(capsys.readouterr().err)
    assert f"{server.host}:{server.port} answered {command.decode()} with what no Redis" in line


@pytest.mark.parametrize("how", ["sized", "diskless"])
def test_bytes_after_the_rdbs_end_fail_the_backups_check(tmp_path, isolated_env, fake, capsys, how):
    # The C walk reads ahead, so verify's count of what was left unread after it was
    # always 0: an RDB followed by anything passed (redis-check-rdb ignores it too).
    transfer = (sized if how == "sized" else diskless)(_rdb() + b"GARBAGE" * 1000)
    case = _case(tmp_path, fake(transfer, keys=KEYS))
    assert case.cli("backup", "redis") == ExitCode.INTEGRITY
    assert "7000 unexpected bytes after the end of the RDB" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("walk", ["c", "python"])
@pytest.mark.parametrize("extra", [0, 100, 3 << 20])
def test_both_walks_say_where_the_rdb_ended(walk, extra):
    rdb = _rdb(50)
    if walk == "c" and rdb_format.rdb_walk is None:
        pytest.skip("the C walk is not built")
    stream = io.BufferedReader(io.BytesIO(rdb + b"G" * extra), 1 << 20)
    read = rdb_format.read_summary if walk == "c" else rdb_format.walk_in_python
    assert read(stream).end_offset == len(rdb) - 8  # just after the end marker, before the CRC
