"""`backup redis` in one pass: the JSON export is made from the RDB as it streams past,
so both hold one moment; SCAN only when SYNC is refused or the RDB cannot be walked;
cancelled or killed half way, nothing is left that the next backup does not clean."""

import io
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engines.catalog import Catalog
from engines.errors import JobCancelledError
from engines.jobs import run_job
from engines.pipeline.artifacts import open_artifact_plain
from engines.plumbing.fsutil import TEMP_MARKER
from engines.redis import rdb_format
from engines.redis.backup import warn_left_out
from engines.redis.json_format import decode_bytes
from engines.redis.rdb_format import walk_in_python
from engines.repository.resolve import resolved_from_catalog
from jarvis_tui.exit_codes import ExitCode
from tests.support.file_systems import needs_root, tmpfs
from tests.support.processes import wait_until
from tests.support.rdb_crafted import crafted
from tests.support.redis import RedisServer
from tests.support.redis_seed import BackupInThread, RedisCase, fast_sync, fingerprint, seed

CLI = Path(sys.executable).with_name("jarvis-tui")
SLOW_KEYS = 4000
# Redis sleeps this long (microseconds) after saving each key: the snapshot of SLOW_KEYS
# keys then streams for about 4 s, long enough to cancel or kill the backup half way.
SLOW_SAVE_US = 1000
FILL = """
for i = 1, tonumber(ARGV[1]) do
  redis.call('SET', 'key:' .. i, string.rep('v', 40) .. i)
  redis.call('HSET', 'hash:' .. i, 'f', i, 'g', 'x')
end
"""
WRITER = """
import sys, redis
client = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]))
i = 0
while True:
    client.set(f"new:{i}", i)
    client.delete(f"key:{i + 1}")
    i += 1
"""


@pytest.fixture
def target(spare_redis_server):
    """An empty server to restore into."""
    spare_redis_server.flush()
    return spare_redis_server


@pytest.fixture
def case(tmp_path, isolated_env, redis_server):
    seed(redis_server)
    return RedisCase(tmp_path, redis_server)


def _plain(case: RedisCase, mode: str) -> bytes:
    with case.workspace() as workspace:
        resolved = resolved_from_catalog(workspace, case.artifacts()[mode])
        with open_artifact_plain(resolved.stored, workspace.keyring(), resolved.expected) as plain:
            return plain.read()


def _events(case: RedisCase) -> list[tuple[str, str]]:
    with case.workspace() as workspace:
        job = workspace.catalog.list_jobs()[0]
        return [(e.level, e.message) for e in workspace.catalog.job_events(job.id)]


def _json_keys(export: bytes) -> set[tuple[int, bytes]]:
    keys = set()
    for line in export.splitlines()[1:-1]:
        record = json.loads(line)
        keys.add((record["db"], decode_bytes(record["key"])))
    return keys


@pytest.mark.parametrize("diskless", ["yes", "no"], ids=["diskless", "disk"])
def test_the_json_export_is_the_emission_of_its_own_rdb(case, redis_server, diskless):
    client = redis_server.client()
    before = client.config_get("repl-diskless-sync")["repl-diskless-sync"]
    client.config_set("repl-diskless-sync", diskless)
    try:
        assert case.cli("backup", "redis") == ExitCode.OK
    finally:
        client.config_set("repl-diskless-sync", before)
    artifacts = case.artifacts()
    assert artifacts["rdb"].metadata["transfer"] == ("diskless" if diskless == "yes" else "disk")
    rdb, export = _plain(case, "rdb"), _plain(case, "json")
    emitted: list[bytes] = []
    walk_in_python(io.BytesIO(rdb), emit=emitted.append)
    lines = export.splitlines(keepends=True)
    assert b"".join(lines[1:-1]) == b"".join(emitted)  # byte for byte: one moment

    meta = artifacts["json"].metadata
    assert meta["json_source"] == "rdb" and meta["rdb_snapshot"] == "stored"
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert header["server_time_ms"] == meta["snapshot_server_time_ms"] > 0
    assert trailer == {"end": True, **{name: meta[name] for name in trailer if name != "end"}}
    assert trailer["keys"] == meta["keys"] == artifacts["rdb"].metadata["keys"] == 18
    assert any("from the snapshot" in message for _, message in _events(case))
    with case.workspace() as workspace:
        job = workspace.catalog.list_jobs()[0]
    # The job's progress is the RDB's bytes, never the JSON's.
    assert (job.progress_done, job.progress_unit) == (len(rdb), "bytes")


def test_keys_written_during_the_backup_are_in_the_json_exactly_as_in_the_rdb(
    tmp_path, isolated_env, redis_server, target
):
    redis_server.flush()
    fast_sync(redis_server)
    redis_server.client().eval(FILL, 0, SLOW_KEYS)
    redis_server.client().config_set("rdb-key-save-delay", SLOW_SAVE_US // 4)
    case = RedisCase(tmp_path, redis_server)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, redis_server.host, str(redis_server.port)]
    )
    try:
        wait_until(lambda: redis_server.client().exists("new:100"), 30, "the writer to start")
        assert case.cli("backup", "redis") == ExitCode.OK
    finally:
        writer.kill()
        writer.wait()
        redis_server.client().config_set("rdb-key-save-delay", 0)
    in_json = _json_keys(_plain(case, "json"))
    case.point_at(target)
    assert case.cli("restore", "redis", "latest", "--flush") == ExitCode.OK  # the RDB
    in_rdb = {(0, key) for key in target.client().scan_iter(count=1000)}
    assert in_json == in_rdb
    # The writer went on meanwhile: the server no longer holds what the snapshot holds.
    now = {(0, key) for key in redis_server.client().scan_iter(count=1000)}
    assert now != in_rdb


def test_an_rdb_this_version_cannot_walk_gets_the_servers_counts_and_a_scanned_json(
    case, redis_server, target, monkeypatch
):
    # A reader that knows no stream records, as an older one faces a newer record type.
    monkeypatch.setattr(rdb_format, "rdb_walk", None)
    for stream_type in (15, 19, 21):
        monkeypatch.delitem(rdb_format.TYPE_NAMES, stream_type)
    assert case.cli("backup", "redis") == ExitCode.OK
    artifacts = case.artifacts()
    assert set(artifacts) == {"rdb", "json"}  # the abandoned attempt left no row
    assert artifacts["rdb"].metadata["counts_from"] == "server"
    assert artifacts["rdb"].metadata["keys"] == 18
    meta = artifacts["json"].metadata
    assert meta["json_source"] == "scan" and "unknown record type" in meta["json_source_reason"]
    assert meta["keys"] == 18
    warnings = [message for level, message in _events(case) if level == "warning"]
    assert any("exporting with SCAN instead" in message for message in warnings)
    assert all(artifact.verify_state == "ok" for artifact in artifacts.values())
    case.point_at(target)
    assert case.cli("restore", "redis", "latest", "--from-json") == ExitCode.OK
    assert fingerprint(target) == fingerprint(redis_server)


def _slow_server(server: RedisServer) -> None:
    server.flush()
    fast_sync(server)
    server.client().eval(FILL, 0, SLOW_KEYS)
    server.client().config_set("rdb-key-save-delay", SLOW_SAVE_US)


def _bytes_received(case: RedisCase) -> bool:
    with case.workspace() as workspace:
        jobs = workspace.catalog.list_jobs()
    return bool(jobs) and jobs[0].progress_done > 0


def _redis_files(case: RedisCase) -> list[str]:
    folder = case.tmp_path / "repo" / "redis"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_backup_cancelled_half_way_fails_both_artifacts_and_leaves_nothing(
    tmp_path, isolated_env, redis_server
):
    _slow_server(redis_server)
    case = RedisCase(tmp_path, redis_server)
    job = BackupInThread(case).start()
    try:
        wait_until(lambda: _bytes_received(case), 60, "the snapshot to start arriving")
        job.cancel()
        job.thread.join(60)
    finally:
        redis_server.client().config_set("rdb-key-save-delay", 0)
    assert not job.thread.is_alive()
    assert len(job.outcome) == 1 and isinstance(job.outcome[0], JobCancelledError)
    with case.workspace() as workspace:
        backup_set = workspace.catalog.list_backup_sets()[0]
        rows = workspace.catalog.artifacts_of(backup_set.id)
    assert backup_set.status == "failed"
    assert sorted(row.mode for row in rows) == ["json", "rdb"]
    assert all(row.status == "failed" for row in rows)
    assert _redis_files(case) == []
    assert case.cli("backup", "redis") == ExitCode.OK


def test_a_backup_killed_half_way_is_cleaned_up_by_the_next(tmp_path, isolated_env, redis_server):
    _slow_server(redis_server)
    case = RedisCase(tmp_path, redis_server)
    folder = tmp_path / "repo" / "redis"

    def both_being_written() -> bool:
        names = _redis_files(case)
        return any("rdb" in n and TEMP_MARKER in n for n in names) and any(
            "json" in n and TEMP_MARKER in n for n in names
        )

    backing_up = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "backup", "redis"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(both_being_written, 60, "both artifacts to be written")
    finally:
        os.kill(backing_up.pid, signal.SIGKILL)
        backing_up.wait()
        redis_server.client().config_set("rdb-key-save-delay", 0)
    assert backing_up.returncode == -signal.SIGKILL
    assert _redis_files(case)  # the killed run's temporaries

    assert case.cli("backup", "redis") == ExitCode.OK
    assert not [name for name in _redis_files(case) if TEMP_MARKER in name]
    with case.workspace() as workspace:
        killed, latest = workspace.catalog.list_backup_sets()[::-1][:2]
        assert latest.status == "complete" and killed.status != "complete"
        rows = workspace.catalog.artifacts_of(killed.id)
    assert rows and all(row.status == "failed" for row in rows)
    assert {p.name for p in folder.iterdir()} == set(_redis_files(case))


@needs_root
def test_a_full_disk_fails_the_backup_with_one_line_and_leaves_nothing(
    tmp_path, isolated_env, redis_server, capsys
):
    redis_server.flush()
    fast_sync(redis_server)
    client = redis_server.client()
    for i in range(400):  # 4 MiB that do not compress, for a 2 MiB repository
        client.set(f"noise:{i}", random.Random(i).randbytes(10_000))
    case = RedisCase(tmp_path, redis_server)
    with tmpfs(tmp_path / "repo", "2m"):
        assert case.cli("backup", "redis") == ExitCode.NO_SPACE
        err = capsys.readouterr().err
        assert "no space left on the device" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert not [name for name in _redis_files(case) if TEMP_MARKER in name]
        with case.workspace() as workspace:
            backup_set = workspace.catalog.list_backup_sets()[0]
            rows = workspace.catalog.artifacts_of(backup_set.id)
        assert backup_set.status == "failed" and all(row.status == "failed" for row in rows)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("modules", "3 keys of module types (ReJSON-RL: 2, craft_0-9: 1) are in the RDB but not "
                    "in the JSON export"),
        ("version12_types", "4 hash keys have fields with their own TTL: the JSON export "
                            "holds those fields without their TTLs"),
    ],
)  # fmt: skip
def test_what_the_json_cannot_hold_gets_one_warning_each(tmp_path, name, expected):
    summary = walk_in_python(io.BytesIO(crafted(name).data), emit=lambda block: None)
    with Catalog.open(tmp_path / "catalog.sqlite3") as catalog:
        run_job(catalog, "backup", "warnings", lambda context: warn_left_out(summary, context))
        job = catalog.list_jobs()[0]
        warnings = [e.message for e in catalog.job_events(job.id) if e.level == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith(expected)
    assert "restore" in warnings[0] and "from the RDB" in warnings[0]


def test_an_empty_server_gives_a_json_of_header_and_trailer(tmp_path, isolated_env, redis_server):
    redis_server.flush()
    fast_sync(redis_server)
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    lines = _plain(case, "json").splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["keys"] == 0
    assert case.artifacts()["json"].metadata["json_source"] == "rdb"
