"""The foundation commands on real artifacts: list, verify, decrypt, catalog rebuild, keys."""

import gzip
import json
import subprocess

import pytest

from engines.pipeline.artifacts import read_sidecar, sidecar_path_for
from engines.repository.artifacts import read_back
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import KEY, PgCase


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    yield case
    case.cleanup()


def _latest_dump(case: PgCase):
    with case.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest")
        artifact = workspace.catalog.artifacts_of(backup_set.id)[0]
        return backup_set, artifact, workspace.repository.path_for(artifact.relpath)


def test_list_verify_and_sha256sum_agree(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backup_set, artifact, path = _latest_dump(pg)
    capsys.readouterr()

    assert pg.cli("list", "--json") == ExitCode.OK
    listed = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in listed] == [backup_set.id]
    assert {a["relpath"] for a in listed[0]["artifacts"]} >= {artifact.relpath}

    sha256sum = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    assert sha256sum.stdout.split()[0] == read_sidecar(path)["checksum"] == artifact.checksum

    assert pg.cli("verify", "latest") == ExitCode.OK
    assert "ok" in capsys.readouterr().out
    with pg.workspace() as workspace:
        assert workspace.catalog.get_backup_set(backup_set.id).verified_state == "ok"


def test_verify_detects_a_flipped_byte_and_records_it(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backup_set, artifact, path = _latest_dump(pg)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    capsys.readouterr()

    assert pg.cli("verify", backup_set.id, "--json") == ExitCode.INTEGRITY
    results = {r["artifact"]: r for r in json.loads(capsys.readouterr().out)}
    assert results[artifact.relpath]["ok"] is False
    assert any(
        "checksum" in p or "authentication" in p for p in results[artifact.relpath]["problems"]
    )
    with pg.workspace() as workspace:
        assert workspace.catalog.get_backup_set(backup_set.id).verified_state == "failed"


def test_decrypt_gives_back_a_standard_gzip_of_the_dump(pg, tmp_path, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    _, artifact, _ = _latest_dump(pg)
    out = tmp_path / "backup.dump.gz"
    assert pg.cli("decrypt", artifact.relpath, "-o", str(out)) == ExitCode.OK
    gunzip = subprocess.run(["gunzip", "-c", str(out)], capture_output=True, check=True)
    assert gunzip.stdout.startswith(b"PGDMP")
    assert gzip.decompress(out.read_bytes()) == gunzip.stdout

    assert pg.cli("decrypt", artifact.relpath, "-o", str(out)) == ExitCode.FAILED
    assert "already exists" in capsys.readouterr().err


def test_decrypt_of_a_tampered_artifact_writes_nothing(pg, tmp_path, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    _, _, path = _latest_dump(pg)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 40)
    out = tmp_path / "cut.dump.gz"
    assert pg.cli("decrypt", str(path), "-o", str(out)) == ExitCode.INTEGRITY
    assert "truncated" in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cut")] == []


def test_wrong_key_names_the_key_id_needed(pg, tmp_path, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    _, artifact, _ = _latest_dump(pg)
    other = "f" * 64
    pg.env_file.write_text(pg.env_file.read_text().replace(KEY, other))
    assert pg.cli("verify", "latest") == ExitCode.KEY_MISSING
    err = capsys.readouterr().err
    assert artifact.key_id in err and other not in err and KEY not in err

    pg.env_file.write_text(pg.env_file.read_text() + f"BACKUP_ENCRYPTION_KEY_PREVIOUS={KEY}\n")
    assert pg.cli("verify", "latest") == ExitCode.OK


def test_catalog_rebuild_from_sidecars_on_a_fresh_host(pg, tmp_path, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backup_set, artifact, path = _latest_dump(pg)
    fresh_catalog = tmp_path / "fresh.sqlite3"
    pg.env_file.write_text(
        pg.env_file.read_text().replace(str(tmp_path / "catalog.sqlite3"), str(fresh_catalog))
    )
    capsys.readouterr()
    assert pg.cli("list", "--json") == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == []

    sidecar_path_for(path).with_name("orphan.dump.gz.enc.metadata.json").write_text("{}")
    assert pg.cli("catalog", "rebuild") == ExitCode.OK
    captured = capsys.readouterr()
    assert "imported 2 artifact(s)" in captured.out
    assert "sidecar without its artifact" in captured.err

    assert pg.cli("list", "--json") == ExitCode.OK
    rebuilt = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in rebuilt] == [backup_set.id]
    restored = {a["relpath"]: a for a in rebuilt[0]["artifacts"]}
    assert restored[artifact.relpath]["checksum"] == artifact.checksum
    assert pg.cli("verify", "latest") == ExitCode.OK


def test_every_backup_is_read_back_and_a_damaged_one_is_caught(pg):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    _, artifact, path = _latest_dump(pg)
    assert artifact.verify_state == "ok"
    assert artifact.verify_detail.startswith("authenticated after backup: sha256")

    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40
    path.write_bytes(bytes(data))
    with pg.workspace() as workspace:
        check = read_back(workspace, artifact.relpath)
    assert not check.ok and "failed authentication" in check.problems[0]
