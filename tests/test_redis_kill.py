"""A restore SIGKILLed half way: the target stays usable, the job says how far it got,
the scratch redis-server dies with it, and the next restore completes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engines.plumbing.fsutil import TEMP_MARKER
from engines.plumbing.processes import process_start_token
from jarvis_tui.exit_codes import ExitCode
from tests.support.processes import wait_until
from tests.support.redis import RedisServer
from tests.support.redis_seed import RedisCase, fast_sync

CLI = Path(sys.executable).with_name("jarvis-tui")
KEYS = 150_000
FILL = """
for i = 1, tonumber(ARGV[1]) do
  redis.call('SET', 'key:' .. i, string.rep('v', 40) .. i)
end
"""


@pytest.fixture
def target():
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


def _keys_recorded(case: RedisCase) -> bool:
    with case.workspace() as workspace:
        job = workspace.catalog.list_jobs()[0]
    return job.kind == "restore" and job.progress_unit == "keys" and job.progress_done > 0


def _scratch_servers(repository: Path) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"redis-server" in command and str(repository).encode() in command:
            found.append(int(entry.name))
    return found


def test_sigkill_mid_restore_leaves_a_usable_target_and_a_record(
    tmp_path, isolated_env, redis_server, target
):
    redis_server.flush()
    fast_sync(redis_server)
    redis_server.client().eval(FILL, 0, KEYS)
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    case.point_at(target)
    repository = tmp_path / "repo"

    restoring = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "restore", "redis", "latest"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: target.client().dbsize() > 0, 60, "keys to arrive on the target")
        wait_until(lambda: _keys_recorded(case), 30, "the job to record keys written")
    finally:
        os.kill(restoring.pid, signal.SIGKILL)
        restoring.wait()
    assert restoring.returncode == -signal.SIGKILL

    client = target.client()
    assert client.ping() and client.set("still", "writable")
    written = client.dbsize() - 1
    assert 0 < written < KEYS
    wait_until(lambda: not _scratch_servers(repository), 20, "the scratch server to die")

    with case.workspace() as workspace:
        job = workspace.catalog.list_jobs()[0]
        assert job.kind == "restore" and job.progress_unit == "keys"
        assert 0 < job.progress_done <= written  # recorded before it was killed
    client.delete("still")

    assert case.cli("restore", "redis", "latest") == ExitCode.OK  # skips what is there
    assert target.client().dbsize() == KEYS
    assert list((repository / ".redis-restore").iterdir()) == []
    assert target.client().get("key:77") == b"v" * 40 + b"77"


OLD_KEYS = 500
FLUSH_KEYS = 40_000


def _keyspace(server: RedisServer) -> dict[int, int]:
    found = server.client().info("keyspace")
    return {int(name[2:]): fields["keys"] for name, fields in found.items()}


def _loaded(target: RedisServer, at_least: int) -> bool:
    return sum(_keyspace(target).values()) - OLD_KEYS - 1 >= at_least


@pytest.mark.parametrize(
    ("form", "loaded"), [("rdb", 1), ("json", FLUSH_KEYS // 2)], ids=["rdb-first", "json-half"]
)
def test_sigkill_during_flush_restore_leaves_the_old_data_or_all_of_the_new(
    tmp_path, isolated_env, redis_server, target, form, loaded
):
    redis_server.flush()
    fast_sync(redis_server)
    redis_server.client().eval(FILL, 0, FLUSH_KEYS)
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    case.point_at(target)
    target.client().mset({f"old:{i}": f"before-{i}" for i in range(OLD_KEYS)})
    target.client(2).set("elsewhere", "kept unless the restore completes")
    extra = ["--from-json"] if form == "json" else []

    restoring = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "restore", "redis", "latest", "--flush",
         *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _loaded(target, loaded), 60, f"{loaded} keys loaded")
    finally:
        os.kill(restoring.pid, signal.SIGKILL)
        restoring.wait()
    assert restoring.returncode == -signal.SIGKILL

    # Never a mix: the old data all there, or (killed after the swap) all of the backup.
    if target.client().dbsize() == OLD_KEYS:
        assert target.client().get("old:7") == b"before-7"
        assert target.client(2).get("elsewhere")
        assert len(_keyspace(target)) == 3  # db 0, db 2 and the spare being loaded
    else:
        assert target.client().dbsize() == FLUSH_KEYS
        assert not target.client().exists("old:7")

    assert case.cli("restore", "redis", "latest", "--flush", *extra) == ExitCode.OK
    assert _keyspace(target) == {0: FLUSH_KEYS}  # spare emptied, db 2 flushed as FLUSHALL does
    assert target.client().get("key:77") == b"v" * 40 + b"77"
    redis_server.flush()


def test_flush_dry_run_says_whether_it_is_all_or_nothing(
    tmp_path, isolated_env, redis_server, target, capsys
):
    redis_server.flush()
    fast_sync(redis_server)
    redis_server.client().set("one", "1")
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    case.point_at(target)
    capsys.readouterr()

    assert case.cli("restore", "redis", "latest", "--flush", "--dry-run") == ExitCode.OK
    said = "".join(capsys.readouterr())
    assert "--flush is all or nothing: db 0 via spare db 15" in said
    assert "not all or nothing" not in said

    for db in range(1, 16):  # no empty database left to load into
        target.client(db).set("busy", db)
    assert case.cli("restore", "redis", "latest", "--flush", "--dry-run") == ExitCode.OK
    said = "".join(capsys.readouterr())
    assert "--flush is not all or nothing on this target: it needs 1 empty database(s)" in said
    assert _keyspace(target) == {db: 1 for db in range(1, 16)}  # a dry run changes nothing

    assert case.cli("restore", "redis", "latest", "--flush") == ExitCode.OK  # flushed in place
    assert _keyspace(target) == {0: 1}
    redis_server.flush()  # the session's server, shared with other tests


def test_offline_restore_removes_the_temporary_a_killed_one_left(
    tmp_path, isolated_env, redis_server, capsys
):
    """`--data-dir`: a restore killed while writing leaves dump.rdb as it was and its
    temporary beside it, which the next restore removes (one of a live process stays)."""
    redis_server.flush()
    fast_sync(redis_server)
    redis_server.client().set("one", "1")
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    data_dir = tmp_path / "stopped-redis"
    data_dir.mkdir()
    (data_dir / "dump.rdb").write_bytes(b"the old snapshot")
    killed = subprocess.Popen(["sleep", "60"])
    start = process_start_token(killed.pid)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    left = data_dir / f".dump.rdb{TEMP_MARKER}{killed.pid}-{start}-0a0b0c0d"
    left.write_bytes(b"half a snapshot")
    live = data_dir / f".dump.rdb{TEMP_MARKER}{os.getpid()}-{process_start_token()}-0a0b0c0e"
    live.write_bytes(b"being written")

    argv = ("restore", "redis", "latest", "--data-dir", str(data_dir), "--flush")
    assert case.cli(*argv) == ExitCode.OK
    assert f"removed {left.name}" in capsys.readouterr().out
    assert not left.exists() and live.exists()
    assert (data_dir / "dump.rdb").read_bytes().startswith(b"REDIS")
    redis_server.flush()
