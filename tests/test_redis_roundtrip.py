"""`backup redis` / `restore redis` against throwaway servers: every type through both
formats, TTLs, binary data, several databases, conflicts, --flush, --db, dry runs."""

import time

import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.redis import RedisServer
from tests.support.redis_seed import TTL_S, RedisCase, expiries, fast_sync, fingerprint, seed


@pytest.fixture
def target(spare_redis_server):
    return spare_redis_server


@pytest.fixture
def case(tmp_path, isolated_env, redis_server, target):
    seed(redis_server)
    target.flush()
    made = RedisCase(tmp_path, redis_server)
    assert made.cli("backup", "redis") == ExitCode.OK
    made.point_at(target)
    return made


def test_backup_holds_rdb_and_json_with_counts_and_is_verified(case):
    artifacts = case.artifacts()
    assert set(artifacts) == {"rdb", "json"}
    expected_types = {"string": 6, "list": 2, "set": 2, "zset": 1, "hash": 2, "stream": 2}
    for mode, artifact in artifacts.items():
        meta = artifact.metadata
        assert meta["keys_per_db"] == {"0": 15, "3": 2, "5": 1}, mode
        assert meta["keys_per_db_type"]["0"] == expected_types
        assert meta["keys_per_type"]["string"] == 7 and meta["keys"] == 18
        assert meta["server_version"].startswith(("6", "7", "8")) and meta["used_memory"] > 0
        assert artifact.verify_state == "ok"
    assert artifacts["rdb"].metadata["rdb_version"] >= 9
    assert artifacts["rdb"].metadata["counts_from"] == "rdb"
    assert artifacts["json"].metadata["rdb_snapshot"] == "stored"
    assert artifacts["json"].metadata["json_source"] == "rdb"  # made from that snapshot


@pytest.mark.parametrize("extra", [[], ["--from-json"]], ids=["rdb", "json"])
def test_every_type_round_trips_with_ttls(case, redis_server, target, extra, capsys):
    before, ttls = fingerprint(redis_server), expiries(redis_server)
    assert case.cli("restore", "redis", "latest", *extra) == ExitCode.OK
    assert fingerprint(target) == before
    restored = expiries(target)
    assert restored.keys() == ttls.keys() and len(ttls) == 2
    for key, at in ttls.items():
        assert abs(restored[key] - at) <= 1000
        remaining = target.client(key[0]).ttl(key[1])
        assert TTL_S - 60 < remaining <= TTL_S
    assert "18 keys written (db 0: 15, db 3: 2, db 5: 1)" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [[], ["--from-json"]], ids=["rdb", "json"])
def test_conflicts_are_skipped_then_replaced_then_flushed(
    case, redis_server, target, extra, capsys
):
    target.client().set("greeting", "newer value")
    target.client().set("only-on-target", "1")
    assert case.cli("restore", "redis", "latest", *extra) == ExitCode.OK
    captured = capsys.readouterr()
    assert "1 keys already exist on the target and were skipped (e.g. db 0: greeting)" in (
        captured.out
    )
    assert "--replace" in captured.err
    assert target.client().get("greeting") == b"newer value"

    assert case.cli("restore", "redis", "latest", "--replace", *extra) == ExitCode.OK
    assert target.client().get("greeting") == "Grüße, ユーザー 🎵".encode()
    assert target.client().get("only-on-target") == b"1"

    assert case.cli("restore", "redis", "latest", "--flush", *extra) == ExitCode.OK
    assert target.client().get("only-on-target") is None
    assert fingerprint(target) == fingerprint(redis_server)


@pytest.mark.parametrize("extra", [[], ["--from-json"]], ids=["rdb", "json"])
def test_dry_run_reports_and_changes_nothing(case, target, extra, capsys):
    target.client().set("greeting", "keep me")
    assert case.cli("restore", "redis", "latest", "--dry-run", "--flush", *extra) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was changed" in out
    assert "backup db 0: 15 keys (2 hash, 2 list, 2 set, 2 stream, 6 string, 1 zset)" in out
    assert "--flush would empty: db 0 (1 keys)" in out
    assert "1 keys already exist on the target and would be flushed first" in out
    assert target.client().dbsize() == 1 and target.client().get("greeting") == b"keep me"


@pytest.mark.parametrize("extra", [[], ["--from-json"]], ids=["rdb", "json"])
def test_one_database_with_db(case, redis_server, target, extra):
    assert case.cli("restore", "redis", "latest", "--db", "3", *extra) == ExitCode.OK
    assert target.client().dbsize() == 0 and target.client(5).dbsize() == 0
    assert fingerprint(target, dbs=(3,)) == fingerprint(redis_server, dbs=(3,))


def test_expired_keys_are_skipped_and_counted(tmp_path, isolated_env, redis_server, target, capsys):
    redis_server.flush()
    fast_sync(redis_server)
    target.flush()
    redis_server.client().set("short", "x", px=2500)
    set_at = time.monotonic()
    redis_server.client().set("long", "y", ex=TTL_S)
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    assert time.monotonic() - set_at < 2.2, "the backup was too slow for this test"
    case.point_at(target)
    time.sleep(max(0.0, 2.6 - (time.monotonic() - set_at)))
    for extra in ([], ["--from-json"]):
        target.flush()
        assert case.cli("restore", "redis", "latest", *extra) == ExitCode.OK
        out = capsys.readouterr().out
        assert "1 keys skipped: already expired" in out and "1 keys written" in out
        assert target.client().keys() == [b"long"]


def test_a_server_refusing_sync_gets_the_json_export_only(
    tmp_path, isolated_env, redis_server, target, capsys
):
    seed(redis_server)
    admin = redis_server.client()
    admin.acl_setuser("nosync", enabled=True, passwords=["+pw-no-sync"], keys="*", channels="*",
                      commands=["+@all", "-sync", "-psync"])  # fmt: skip
    try:
        case = RedisCase(tmp_path, redis_server)
        url = f"redis://nosync:pw-no-sync@{redis_server.host}:{redis_server.port}/0"
        case.point_at(redis_server, url=url)
        assert case.cli("backup", "redis") == ExitCode.OK
        out = capsys.readouterr().out
    finally:
        admin.acl_deluser("nosync")
    assert "no RDB snapshot: refused by the server" in out
    artifacts = case.artifacts()
    assert set(artifacts) == {"json"} and "NOPERM" in artifacts["json"].metadata["rdb_snapshot"]
    assert artifacts["json"].metadata["json_source"] == "scan"
    assert "refused SYNC" in artifacts["json"].metadata["json_source_reason"]
    with case.workspace() as workspace:
        events = [e.message for job in workspace.catalog.list_jobs() for e in
                  workspace.catalog.job_events(job.id)]  # fmt: skip
    assert any("refused SYNC" in message for message in events)
    case.point_at(target)
    target.flush()
    assert case.cli("restore", "redis", "latest") == ExitCode.NOT_FOUND
    assert "--from-json" in capsys.readouterr().err
    assert case.cli("restore", "redis", "latest", "--from-json") == ExitCode.OK
    assert fingerprint(target) == fingerprint(redis_server)


def test_offline_data_dir_places_the_snapshot_for_a_stopped_server(case, redis_server, capsys):
    stopped = RedisServer()
    try:
        stopped.start()
        stopped.client().set("old", "data")
        stopped.client().save()
        assert case.cli("restore", "redis", "latest", "--data-dir", str(stopped.base_dir)) == 1
        assert "is running there" in capsys.readouterr().err
        stopped.stop()
        argv = ("restore", "redis", "latest", "--data-dir", str(stopped.base_dir))
        assert case.cli(*argv) == ExitCode.FAILED
        assert "add --flush" in capsys.readouterr().err
        assert case.cli(*argv, "--flush") == ExitCode.OK
        assert list(stopped.base_dir.glob("dump.rdb.pre-restore-*"))
        stopped.start()
        assert fingerprint(stopped) == fingerprint(redis_server)
    finally:
        stopped.close()


def test_output_copies_both_artifacts_and_restores_from_the_copy(
    tmp_path, isolated_env, redis_server, target
):
    seed(redis_server)
    target.flush()
    case = RedisCase(tmp_path, redis_server)
    copies = tmp_path / "copies"
    copies.mkdir()
    assert case.cli("backup", "redis", "--output", str(copies)) == ExitCode.OK
    names = sorted(p.name for p in copies.iterdir())
    assert len(names) == 4 and sum(n.endswith(".metadata.json") for n in names) == 2
    rdb_copy = next(copies.glob("*rdb*.enc"))
    assert rdb_copy.read_bytes() == case.artifact_path("rdb").read_bytes()

    assert case.cli("backup", "redis", "--output", str(rdb_copy)) == ExitCode.FAILED
    case.point_at(target)
    assert case.cli("restore", "redis", str(rdb_copy)) == ExitCode.OK
    assert fingerprint(target) == fingerprint(redis_server)
