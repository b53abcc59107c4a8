"""A restore SIGKILLed half way: the target stays usable, the job says how far it got,
the scratch redis-server dies with it, and the next restore completes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.redis_seed import RedisCase, fast_sync
from tests.servers import RedisServer, wait_until

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
