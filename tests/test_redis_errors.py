"""Bad input to `backup redis` / `restore redis`: a clear error, a non-zero exit, and the
target left exactly as it was (even with --flush)."""

from pathlib import Path

import pytest

from engines.pipeline.artifacts import open_artifact_plain, read_sidecar, write_artifact
from engines.pipeline.crypto import Keyring, MasterKey
from engines.redis import restore as redis_restore
from engines.redis.verify import check_artifact
from engines.repository.resolve import ResolvedArtifact
from jarvis_tui.exit_codes import ExitCode
from tests.support.processes import free_port
from tests.support.redis import RedisServer
from tests.support.redis_seed import KEY, RedisCase, fingerprint, seed

PASSWORD = "redis-Hunter2-secret"


@pytest.fixture(scope="module")
def target():
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def case(tmp_path, isolated_env, redis_server, target):
    seed(redis_server)
    target.flush()
    target.client().set("precious", "keep me")
    made = RedisCase(tmp_path, redis_server)
    assert made.cli("backup", "redis") == ExitCode.OK
    made.point_at(target)
    return made


def _untouched(target: RedisServer) -> None:
    assert fingerprint(target) == {0: {b"precious": ("string", b"keep me")}, 3: {}, 5: {}}


def _forge(case: RedisCase, name: str, plain: bytes, **metadata) -> str:
    """An artifact sealed with the right key around `plain`, as a backup would write it."""
    path = case.tmp_path / f"{name}.gz.enc"
    keyring = Keyring(MasterKey.from_hex(KEY), ())
    write_artifact([plain], path, keyring, {"source": "redis", "type": "redis", **metadata})
    return str(path)


def _plain(case: RedisCase, mode: str) -> bytes:
    keyring = Keyring(MasterKey.from_hex(KEY), ())
    with open_artifact_plain(case.artifact_path(mode), keyring) as plain:
        return plain.read()


def test_wrong_or_missing_password_names_the_server_never_the_password(
    tmp_path, isolated_env, capsys
):
    with RedisServer(password=PASSWORD) as guarded:
        case = RedisCase(tmp_path, guarded)
        where = f"{guarded.host}:{guarded.port}"
        case.point_at(guarded, url=f"redis://:not-the-{PASSWORD}@{where}/0")
        assert case.cli("backup", "redis") == ExitCode.FAILED
        err = capsys.readouterr().err
        assert where in err and "refused the user name or password" in err
        assert PASSWORD not in err
        case.point_at(guarded, url=f"redis://{where}/0")
        assert case.cli("backup", "redis") == ExitCode.FAILED
        assert "requires a password" in capsys.readouterr().err
        case.point_at(guarded)  # the right password: backup and restore work
        guarded.client().set("k", "v")
        guarded.client().config_set("repl-diskless-sync-delay", 0)
        assert case.cli("backup", "redis") == ExitCode.OK
        assert case.cli("restore", "redis", "latest", "--flush") == ExitCode.OK
    logs = b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("*"))
    assert PASSWORD.encode() not in logs and logs
    with case.workspace() as workspace:
        for job in workspace.catalog.list_jobs():
            for event in workspace.catalog.job_events(job.id):
                assert PASSWORD not in event.message


def test_unreachable_server(tmp_path, isolated_env, capsys):
    port = free_port()
    case = RedisCase(tmp_path, None, url=f"redis://127.0.0.1:{port}/0")
    assert case.cli("backup", "redis") == ExitCode.FAILED
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "connection refused" in err


def test_wrong_database_index(case, target, capsys):
    case.point_at(target, url=target.url(99))
    assert case.cli("restore", "redis", "latest") == ExitCode.FAILED
    assert "has no database 99" in capsys.readouterr().err
    case.point_at(target)
    assert case.cli("restore", "redis", "latest", "--db", "16", "--flush") == ExitCode.FAILED
    assert "--db 16: the target has databases 0 to 15" in capsys.readouterr().err
    assert case.cli("restore", "redis", "latest", "--db", "7", "--flush") == ExitCode.FAILED
    assert "holds keys in database(s) 0, 3, 5 only" in capsys.readouterr().err
    assert case.cli("restore", "redis", "latest", "--db", "-1") == ExitCode.FAILED
    _untouched(target)


@pytest.mark.parametrize("mode", ["rdb", "json"])
@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_damaged_artifact_changes_nothing(case, target, capsys, mode, damage):
    path = case.artifact_path(mode)
    data = bytearray(path.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0x40
    else:
        del data[-300:]
    path.write_bytes(bytes(data))
    extra = ["--from-json"] if mode == "json" else []
    assert case.cli("restore", "redis", "latest", "--flush", *extra) == ExitCode.INTEGRITY
    assert path.name in capsys.readouterr().err
    _untouched(target)
    assert case.cli("verify", "latest") != ExitCode.OK


def test_corrupted_rdb_inside_a_valid_artifact(case, target, capsys):
    plain = bytearray(_plain(case, "rdb"))
    plain[len(plain) // 2 : len(plain) // 2 + 64] = b"\xfe" * 64
    path = _forge(case, "bad_redis.rdb", bytes(plain), mode="rdb", content="rdb", rdb_version=10)
    assert case.cli("restore", "redis", path, "--flush") == ExitCode.INTEGRITY
    assert "bad_redis.rdb" in capsys.readouterr().err
    _untouched(target)
    cut = _forge(case, "cut_redis.rdb", _plain(case, "rdb")[:-500], mode="rdb", content="rdb")
    assert case.cli("restore", "redis", cut, "--flush") == ExitCode.INTEGRITY
    assert "truncated" in capsys.readouterr().err
    _untouched(target)


def test_corrupted_json_inside_a_valid_artifact(case, target, capsys):
    original = _plain(case, "json").splitlines(keepends=True)
    lines = list(original)
    lines[3] = b'{"db": 0, "key": "x", "type": "hash", "value": "not pairs"}\n'
    path = _forge(case, "bad_redis.json", b"".join(lines), mode="json", content="json")
    assert case.cli("restore", "redis", path, "--from-json", "--flush") == ExitCode.INTEGRITY
    assert "line 4" in capsys.readouterr().err
    _untouched(target)
    cut = _forge(case, "cut_redis.json", b"".join(original[:5]), mode="json", content="json")
    assert case.cli("restore", "redis", cut, "--from-json", "--flush") == ExitCode.INTEGRITY
    assert "end record is missing" in capsys.readouterr().err
    _untouched(target)


def _between_the_passes(monkeypatch, change) -> None:
    """Run `change` once the JSON restore's first pass (the check) is done, before the
    artifact is opened again to be written."""
    opened = []
    export_plain = redis_restore._export_plain

    def open_again(*args, **kwargs):
        if opened:
            change()
        opened.append(1)
        return export_plain(*args, **kwargs)

    monkeypatch.setattr(redis_restore, "_export_plain", open_again)


def test_another_artifact_put_in_place_after_the_check_changes_nothing(
    case, target, capsys, monkeypatch
):
    path = case.artifact_path("json")
    other = _forge(case, "other_redis.json", _plain(case, "json"), mode="json", content="json")
    _between_the_passes(monkeypatch, lambda: path.write_bytes(Path(other).read_bytes()))
    assert case.cli("restore", "redis", "latest", "--from-json", "--flush") == ExitCode.INTEGRITY
    err = capsys.readouterr().err
    # The second pass is told which artifact it asked for: the one in its place is refused
    # on opening (the salt check behind it would refuse it too).
    assert "changed after it was checked" in err and "not the artifact asked for" in err
    assert "nothing was changed" in err
    _untouched(target)


def test_an_artifact_damaged_after_the_check_stops_the_writes_and_says_how_far(
    case, target, capsys, monkeypatch
):
    keyring = Keyring(MasterKey.from_hex(KEY), ())
    path = case.tmp_path / "small_chunks_redis.json.gz.enc"
    write_artifact([_plain(case, "json")], path, keyring,
                   {"source": "redis", "type": "redis", "mode": "json", "content": "json"},
                   level=1, chunk_size=4096)  # fmt: skip
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    _between_the_passes(monkeypatch, lambda: path.write_bytes(bytes(data)))
    assert case.cli("restore", "redis", str(path), "--from-json") == ExitCode.INTEGRITY
    err = capsys.readouterr().err
    assert "changed after it was checked" in err and "failed authentication" in err
    assert "stopped after" in err and "keys written" in err
    assert target.client().get("precious") == b"keep me"  # without --flush: never touched


def test_rdb_from_a_newer_redis_names_both_versions(case, target, capsys):
    plain = b"REDIS0012" + _plain(case, "rdb")[9:]
    path = _forge(case, "new_redis.rdb", plain, mode="rdb", content="rdb", rdb_version=12,
                  rdb_aux={"redis-ver": "7.4.0"}, server_version="7.4.0")  # fmt: skip
    assert case.cli("restore", "redis", path, "--flush") == ExitCode.FAILED
    err = capsys.readouterr().err
    version = target.client().info("server")["redis_version"]
    assert "Redis 7.4.0 (RDB version 12)" in err and f"Redis {version}" in err
    assert "up to version 10" in err and "--from-json" in err
    _untouched(target)


def test_wrong_key(case, target, capsys):
    text = case.env_file.read_text().replace(KEY, "ab" * 32)
    case.env_file.write_text(text)
    assert case.cli("restore", "redis", "latest", "--flush") == ExitCode.KEY_MISSING
    assert "BACKUP_ENCRYPTION_KEY" in capsys.readouterr().err
    _untouched(target)


def test_artifact_of_another_type(case, target, capsys):
    path = case.tmp_path / "db.dump.gz.enc"
    keyring = Keyring(MasterKey.from_hex(KEY), ())
    write_artifact([b"PGDMP..."], path, keyring, {"source": "postgres", "mode": "full"})
    assert case.cli("restore", "redis", str(path), "--flush") == ExitCode.FAILED
    assert "is a postgres artifact, not redis" in capsys.readouterr().err
    _untouched(target)


def test_contradictory_options(case, target, capsys):
    assert case.cli("restore", "redis", "latest", "--flush", "--replace") == ExitCode.FAILED
    assert "--replace has nothing to do" in capsys.readouterr().err
    argv = ("restore", "redis", "latest", "--data-dir", str(case.tmp_path), "--from-json")
    assert case.cli(*argv) == ExitCode.FAILED
    assert "does not combine with --from-json" in capsys.readouterr().err
    _untouched(target)


def test_verify_catches_counts_that_disagree_with_the_metadata(case, capsys):
    path = _forge(case, "odd_redis.json", _plain(case, "json"), mode="json", content="json",
                  keys=999, keys_per_db={"0": 999})  # fmt: skip
    assert case.cli("verify", path) == ExitCode.OK  # the container itself is sound
    metadata = read_sidecar(Path(path))
    check = check_artifact(ResolvedArtifact(Path(path), None, metadata), case_keyring())
    assert not check.ok
    assert "keys: the artifact holds 18, the metadata records 999" in check.detail


def case_keyring() -> Keyring:
    return Keyring(MasterKey.from_hex(KEY), ())


@pytest.mark.parametrize("extra", [["--flush"], ["--replace"], []])
def test_a_target_refusing_writes_stops_the_json_restore_with_its_reason(
    case, target, extra, capsys
):
    # A batch sent as it is (--flush, --replace) and one checked key by key (conflicts)
    # both notice the error among their replies.
    admin = target.client()
    admin.config_set("maxmemory", "1")
    try:
        code = case.cli("restore", "redis", "latest", "--from-json", *extra)
    finally:
        admin.config_set("maxmemory", "0")
    assert code != ExitCode.OK
    err = capsys.readouterr().err
    assert "the target refused a write: OOM" in err


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"db": 0, "key": "k", "type": "stream", "value": []}, "needs an entries list"),
        ({"db": 0, "key": "k", "type": "zset", "value": [["a", "nan"]]}, "cannot be NaN"),
        ({"db": -1, "key": "k", "type": "string", "value": "x"}, "db must be a number"),
        ({"db": 0, "key": 1, "type": "string", "value": "x"}, "expected a string"),
        ({"db": 0, "key": "k", "type": "hash", "value": [["a"]]}, "pairs"),
        ({"db": 0, "key": "k", "type": "set", "value": "abc"}, "a list of values"),
        ({"db": 0, "key": "k", "type": "module", "value": []}, "unknown type"),
    ],
)
def test_the_restore_compiler_rejects_what_the_reader_rejects(document, message):
    from engines.redis.json_format import JsonFormatError
    from engines.redis.json_import import compile_line

    with pytest.raises(JsonFormatError, match=f"line 7: .*{message}"):
        compile_line(document, 7)
