"""The S3 prefix lock between real processes, over moto's S3 on loopback: one holds it,
another is refused and told who; a holder killed with SIGKILL is taken over once its
lease has run out; a holder that stalls past its lease stops when it wakes, and leaves
the new holder's lock alone. Short leases are set for the tests; expiry is judged by the
server's clock, so each wait is "until it happens", with generous deadlines."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.destinations.s3_lock import LOCK_KEY, S3PrefixLock, S3PrefixLockedError
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import REPO_ROOT, FilesEnv, child_env, make_files_env, random_text
from tests.support.s3_hosts import BUCKET, PREFIX, s3_settings
from tests.support.s3_prefix import s3_copy

LEASE = 4.0  # seconds: renewed every second by the holder
DEADLINE = 60.0
LOST_EXIT = 3
OTHER_HOST = "jarvis-2"  # a holder on another host: only its lease says it is gone

HOLDER = """
import socket, sys, time
endpoint, bucket, prefix, lease, ready, host = sys.argv[1:7]
socket.gethostname = lambda: host  # another host sharing the bucket, if told so
from engines.destinations.s3 import S3Destination
from engines.destinations.s3_lock import LockLostError, S3PrefixLock
destination = S3Destination(
    bucket, prefix=prefix, endpoint_url=endpoint, access_key="testing",
    secret_key="testing", region="us-east-1",
)
lock = S3PrefixLock(destination, "prune (test holder)", lease_seconds=float(lease))
lock.acquire()
open(ready, "w").write("held")
while True:
    try:
        lock.ensure_held()
    except LockLostError as error:
        lock.release()  # must leave the new holder's lock alone
        print(error, flush=True)
        sys.exit(3)
    time.sleep(0.05)
"""


def start_holder(
    s3_server, tmp_path: Path, lease: float = LEASE, host: str = OTHER_HOST
) -> subprocess.Popen:
    ready = tmp_path / f"held-{time.monotonic_ns()}"
    arguments = [s3_server.endpoint_url, BUCKET, PREFIX, str(lease), str(ready), host]
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *arguments],
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + DEADLINE
    while not ready.exists():
        assert child.poll() is None, "the holder ended before taking the lock"
        assert time.monotonic() < deadline, "the holder did not take the lock"
        time.sleep(0.02)
    return child


def lock_etag(s3_server) -> str:
    return s3_server.client().head_object(Bucket=BUCKET, Key=f"{PREFIX}/{LOCK_KEY}")["ETag"]


def take_when_free(lock: S3PrefixLock) -> int:
    """Acquire `lock` as soon as the holder's lease lets it; the refusals before that."""
    refusals = 0
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            lock.acquire()
            return refusals
        except S3PrefixLockedError:
            refusals += 1
            assert time.monotonic() < deadline, "the lease never ran out"
            time.sleep(0.2)


@pytest.fixture
def bucket(s3_server) -> str:
    return s3_server.create_bucket(BUCKET)


def test_the_server_answers_412_to_a_second_conditional_put_and_a_stale_if_match(s3_server, bucket):
    """What the lock stands on: moto (as S3) honours If-None-Match and If-Match."""
    client = s3_server.client()
    key = f"{PREFIX}/{LOCK_KEY}"
    first = client.put_object(Bucket=bucket, Key=key, Body=b"one", IfNoneMatch="*")["ETag"]
    for call in (
        lambda: client.put_object(Bucket=bucket, Key=key, Body=b"two", IfNoneMatch="*"),
        lambda: client.delete_object(Bucket=bucket, Key=key, IfMatch='"0"'),
        lambda: client.put_object(Bucket=bucket, Key=key, Body=b"two", IfMatch='"0"'),
    ):
        with pytest.raises(Exception) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"one"
    client.delete_object(Bucket=bucket, Key=key, IfMatch=first)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_second_process_is_refused_naming_the_holder_and_takes_over_after_a_sigkill(
    s3_server, bucket, tmp_path
):
    holder = start_holder(s3_server, tmp_path)
    try:
        mine = S3PrefixLock(s3_copy(s3_server), "cleanup", lease_seconds=LEASE)
        with pytest.raises(S3PrefixLockedError) as refused:
            mine.acquire()
        assert refused.value.holder["pid"] == holder.pid
        assert refused.value.holder["purpose"] == "prune (test holder)"
        words = str(refused.value)
        assert f"pid {holder.pid} on host {OTHER_HOST} (prune (test holder)" in words
        assert f"s3://{BUCKET}/{PREFIX}/" in words and "lease runs out in" in words

        # Another host's prefix in the same bucket is another lock.
        with S3PrefixLock(s3_copy(s3_server, "hosts/jarvis-2"), "prune") as other:
            assert other.held

        # Alive, the holder renews its lease: still refused long after one lease.
        seen = {lock_etag(s3_server)}
        deadline = time.monotonic() + DEADLINE
        while len(seen) < 6:  # five renewals: more than a lease has gone by
            assert time.monotonic() < deadline, "the holder does not renew its lease"
            time.sleep(0.1)
            seen.add(lock_etag(s3_server))
        with pytest.raises(S3PrefixLockedError):
            mine.acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)

    take_when_free(mine)
    try:
        assert mine.took_over_from is not None
        assert f"pid {holder.pid} on host {OTHER_HOST}" in mine.took_over_from
        assert "whose lease ran out" in mine.took_over_from
        with pytest.raises(S3PrefixLockedError, match=f"pid {os.getpid()} "):
            S3PrefixLock(s3_copy(s3_server), "prune").acquire()
    finally:
        mine.release()
    assert LOCK_KEY not in {
        item["Key"].rpartition("/")[2]
        for item in s3_server.client().list_objects_v2(Bucket=BUCKET).get("Contents", ())
    }


def test_a_holder_stalled_past_its_lease_stops_and_leaves_the_new_holders_lock(
    s3_server, bucket, tmp_path
):
    holder = start_holder(s3_server, tmp_path)
    holder.send_signal(signal.SIGSTOP)  # as a host that froze mid-cleanup
    mine = S3PrefixLock(s3_copy(s3_server), "cleanup", lease_seconds=LEASE)
    try:
        take_when_free(mine)
        assert f"pid {holder.pid} " in (mine.took_over_from or "")
        ours = lock_etag(s3_server)
        holder.send_signal(signal.SIGCONT)
        out, _ = holder.communicate(timeout=DEADLINE)
        assert holder.returncode == LOST_EXIT
        assert f"{PREFIX}/{LOCK_KEY}" in out and "stopped before deleting more" in out
        assert lock_etag(s3_server) == ours  # its release did not remove our lock
        mine.ensure_held()
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        mine.release()


def test_cleanup_and_prune_are_refused_while_another_process_holds_the_prefix(
    s3_server, bucket, tmp_path, isolated_env, capsys
):
    env: FilesEnv = make_files_env(tmp_path / "host")
    env.set(**s3_settings(s3_server), BACKUP_RETENTION_WEEKLY="0", BACKUP_RETENTION_MONTHLY="0")
    for number in range(2):
        (env.data / f"f{number}.txt").write_bytes(random_text(40_000, number))
        assert env.cli("backup", "files") == ExitCode.OK
    s3 = s3_copy(s3_server)
    before = {item.key for item in s3.list()}
    holder = start_holder(s3_server, tmp_path, lease=30)
    try:
        capsys.readouterr()
        assert env.cli("cleanup") == ExitCode.LOCKED
        err = capsys.readouterr().err
        assert f"locked by pid {holder.pid} on host {OTHER_HOST}" in err
        assert "Traceback" not in err
        with env.workspace() as workspace:
            assert len(workspace.catalog.list_backup_sets()) == 2  # nothing deleted
            assert workspace.catalog.sets_being_deleted() == {}
        assert {item.key for item in s3.list()} == before

        assert env.cli("prune") == ExitCode.FAILED
        err = capsys.readouterr().err
        assert f"prune s3: not pruned: S3 prefix s3://{BUCKET}/{PREFIX}/ is locked by " in err
        assert f"pid {holder.pid}" in err
        assert {item.key for item in s3.list()} >= before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


def test_a_holder_on_this_host_whose_process_is_gone_is_taken_over_at_once(
    s3_server, bucket, tmp_path
):
    """Killed, or its release failed while the bucket was unreachable: its pid says it is
    gone, so the next run need not wait out a lease (a long one here)."""
    holder = start_holder(s3_server, tmp_path, lease=600, host=socket.gethostname())
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with S3PrefixLock(s3_copy(s3_server), "cleanup") as mine:
        taken = mine.took_over_from or ""
        assert taken.startswith(f"pid {holder.pid} on host {socket.gethostname()} (prune (")
        assert taken.endswith(", whose process on this host is gone")


# A real `jarvis-tui prune` that stops while it holds the prefix's lock, before deleting.
PRUNE_PAUSED = """
import sys, time
from pathlib import Path
import engines.store.prune_copies as prune_copies
marker, env_file = Path(sys.argv[1]), sys.argv[2]
def pause(*args, **kwargs):
    marker.write_text("holding")
    time.sleep(120)
prune_copies.prune_copy = pause
from jarvis_tui.cli import main
sys.exit(main(["--env-file", env_file, "prune"]))
"""


def test_two_hosts_pruning_one_prefix_the_second_is_refused_naming_the_first(
    s3_server, bucket, tmp_path, isolated_env, capsys
):
    first = make_files_env(tmp_path / "first")
    second = make_files_env(tmp_path / "second")
    for env in (first, second):
        env.set(**s3_settings(s3_server))  # the same S3_PREFIX: a misconfiguration
    (first.data / "a.txt").write_bytes(random_text(40_000, 1))
    assert first.cli("backup", "files") == ExitCode.OK
    s3 = s3_copy(s3_server)
    marker = tmp_path / "holding"
    pruning = subprocess.Popen(
        [sys.executable, "-c", PRUNE_PAUSED, str(marker), str(first.env_file)],
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while not marker.exists():
            assert pruning.poll() is None, "the first prune ended before holding the lock"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        before = {item.key: item.size for item in s3.list()}  # the first one's copy done
        capsys.readouterr()
        assert second.cli("prune") == ExitCode.FAILED
        err = capsys.readouterr().err
        assert (
            f"prune s3: not pruned: S3 prefix s3://{BUCKET}/{PREFIX}/ is locked by pid "
            f"{pruning.pid} on host {socket.gethostname()} (prune, started " in err
        )
        assert {item.key: item.size for item in s3.list()} == before  # not even a copy
    finally:
        pruning.send_signal(signal.SIGKILL)
        pruning.wait(timeout=30)


def test_a_dead_pid_of_another_pid_namespace_under_this_host_name_waits_for_its_lease(
    s3_server, bucket
):
    """Two containers may share a host name; a pid of the other one says nothing here."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    record = {
        "host": socket.gethostname(),
        "pid": int(ended.stdout),
        "purpose": "cleanup",
        "started_at": "2030-01-01T00:00:00+00:00",
        "lease_seconds": 600,
        "process_space": "another-boot:4026531836",
    }
    s3_server.client().put_object(
        Bucket=BUCKET, Key=f"{PREFIX}/{LOCK_KEY}", Body=json.dumps(record).encode()
    )
    with pytest.raises(S3PrefixLockedError, match=f"locked by pid {record['pid']} on host "):
        S3PrefixLock(s3_copy(s3_server), "prune").acquire()
