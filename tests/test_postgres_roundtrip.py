"""Backups and restores of a real throwaway PostgreSQL, through the CLI."""

import gzip
import json
import subprocess

import pytest

from engines.pipeline.artifacts import read_sidecar
from engines.postgres import archive_stream
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import PgCase


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    yield case
    case.cleanup()


def _artifacts(case: PgCase, set_id: str | None = None):
    with case.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set(set_id or "latest", "postgres")
        return backup_set, workspace.catalog.artifacts_of(backup_set.id)


def test_full_backup_records_snapshot_counts_and_round_trips(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    _, artifacts = _artifacts(pg)
    assert [a.mode for a in artifacts] == ["full", "globals"]
    dump = artifacts[0]
    assert dump.relpath.endswith("_full.dump.gz.enc")
    meta = dump.metadata
    assert meta["database"] == pg.source
    assert meta["server_version"].startswith("15") and meta["pg_dump_version"].startswith("15")
    rows = {f"{t['schema']}.{t['name']}": t["rows"] for t in meta["tables"]}
    assert rows == {"app.users": 300, "public.empty_table": 0, "public.orders": 900}
    assert meta["large_objects"] == 1 and meta["database_size"] > 0

    # Table data through one and two COPYs, the large object through pg_restore meanwhile.
    for jobs in ("2", "1"):
        target = f"{pg.source}_copy{jobs}"
        code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--jobs", jobs)
        assert code == ExitCode.OK
        assert pg.fingerprint(target) == pg.fingerprint()
        assert f"created database {target}" in capsys.readouterr().out
        assert f"{jobs} COPY connection(s) and large objects through pg_restore" in pg.job_log()


def test_without_the_c_walker_pg_restore_loads_the_whole_database(pg, capsys, monkeypatch):
    monkeypatch.setattr(archive_stream, "AVAILABLE", False)  # installed without a C compiler
    assert pg.cli("backup", "postgres") == ExitCode.OK
    # From a plain copy with two parallel jobs (no table holds 80% of the rows), and
    # streamed into one pg_restore with one job.
    for jobs, how in (("2", "data block(s) start"), ("1", "schema and data loaded")):
        target = f"{pg.source}_pg_restore{jobs}"
        code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--jobs", jobs)
        assert code == ExitCode.OK
        assert pg.fingerprint(target) == pg.fingerprint()
        assert how in pg.job_log()
    assert "COPY connection" not in pg.job_log()


def test_schema_then_data_backups_rebuild_the_database(pg):
    assert pg.cli("backup", "postgres", "--mode", "schema") == ExitCode.OK
    schema_set, schema_artifacts = _artifacts(pg)
    assert [a.mode for a in schema_artifacts] == ["schema"]
    assert pg.cli("backup", "postgres", "--mode", "data") == ExitCode.OK
    data_set, _ = _artifacts(pg)

    target = f"{pg.source}_rebuilt"
    assert pg.cli("restore", "postgres", schema_set.id, "--target-db", target) == ExitCode.OK
    structure = pg.fingerprint(target)
    assert structure["relations"] == pg.fingerprint()["relations"]
    assert all(count == 0 for count, _ in structure["contents"].values())

    assert pg.cli("restore", "postgres", data_set.id, "--target-db", target) == ExitCode.OK
    assert pg.fingerprint(target) == pg.fingerprint()

    # Loading the same data again would duplicate rows: refused, then replaced on request.
    assert pg.cli("restore", "postgres", data_set.id, "--target-db", target) == ExitCode.FAILED
    assert (
        pg.cli("restore", "postgres", data_set.id, "--target-db", target, "--drop-existing")
        == ExitCode.OK
    )
    assert pg.fingerprint(target) == pg.fingerprint()


def test_non_empty_target_is_refused_then_swapped_keeping_the_previous(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backed_up = pg.fingerprint()
    pg.server.execute("DELETE FROM public.orders WHERE id % 2 = 0", dbname=pg.source)
    changed = pg.fingerprint()
    capsys.readouterr()

    assert pg.cli("restore", "postgres", "latest") == ExitCode.FAILED
    assert "--drop-existing" in capsys.readouterr().err
    assert pg.fingerprint() == changed

    assert pg.cli("restore", "postgres", "latest", "--drop-existing", "--jobs", "2") == 0
    assert pg.fingerprint() == backed_up
    previous = [n for n in pg.databases() if n.startswith(f"{pg.source}_pre_restore_")]
    assert len(previous) == 1
    assert pg.fingerprint(previous[0]) == changed
    assert f'DROP DATABASE "{previous[0]}"' in capsys.readouterr().out

    assert pg.cli("restore", "postgres", "latest", "--drop-existing", "--discard-previous") == 0
    assert pg.fingerprint() == backed_up
    remaining = [n for n in pg.databases() if n.startswith(f"{pg.source}_pre_restore_")]
    assert remaining == previous  # the first swap's copy stays; the second one was discarded
    assert not [n for n in pg.databases() if n.startswith("jarvis_scratch_")]


def test_dry_run_reports_the_artifact_and_the_target_and_changes_nothing(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before_databases, before = pg.databases(), pg.fingerprint()
    capsys.readouterr()
    assert pg.cli("restore", "postgres", "latest", "--dry-run", "--drop-existing") == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was changed" in out
    assert "every chunk authenticated" in out
    assert "app.users: 300 rows; indexes: users_email_key, users_name_idx, users_pkey" in out
    assert "public.orders: 900 rows" in out and "1 large object(s)" in out
    assert "schemas: app" in out
    assert "holds 3 table(s), 1200 rows" in out
    assert "swap it in" in out

    # Without --drop-existing the real restore would refuse: so does the dry run's exit status.
    assert pg.cli("restore", "postgres", "latest", "--dry-run") == ExitCode.FAILED
    out = capsys.readouterr().out
    assert "dry run: nothing was changed; the restore would be refused" in out
    assert "plan: refused: the target is not empty; --drop-existing would replace it" in out
    assert pg.databases() == before_databases and pg.fingerprint() == before


def test_table_restore_refuses_to_clobber_then_replaces_in_one_transaction(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backed_up = pg.fingerprint()
    pg.server.execute("DELETE FROM public.orders WHERE amount > 10", dbname=pg.source)
    pg.server.execute("UPDATE app.users SET name = 'changed'", dbname=pg.source)
    capsys.readouterr()

    assert pg.cli("restore", "postgres", "latest", "--table", "orders") == ExitCode.FAILED
    assert "--drop-existing" in capsys.readouterr().err

    code = pg.cli("restore", "postgres", "latest", "--table", "orders", "--drop-existing")
    assert code == ExitCode.OK
    now = pg.fingerprint()
    assert now["contents"]["public.orders"] == backed_up["contents"]["public.orders"]
    assert now["contents"]["app.users"] != backed_up["contents"]["app.users"]  # not asked for
    assert now["relations"] == backed_up["relations"]  # index, identity sequence, view back

    # Into another database that lacks the table (and its schema).
    other = f"{pg.source}_tables"
    pg.server.create_database(other)
    assert (
        pg.cli("restore", "postgres", "latest", "--target-db", other, "--table", "app.users") == 0
    )
    assert pg.fingerprint(other)["contents"]["app.users"] == backed_up["contents"]["app.users"]
    assert pg.cli("restore", "postgres", "latest", "--table", "nope") == ExitCode.FAILED
    assert "not in this backup" in capsys.readouterr().err


def test_globals_recreate_missing_roles_and_leave_existing_ones(pg, capsys):
    role = f"jarvis_role_{pg.source[-6:]}"
    pg.server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'role-pw' CONNECTION LIMIT 7")
    try:
        assert pg.cli("backup", "postgres") == ExitCode.OK
        pg.server.execute(f"DROP ROLE {role}")
        target = f"{pg.source}_with_roles"
        code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--with-globals")
        assert code == ExitCode.OK
        out = capsys.readouterr().out
        assert f"created role(s) {role}" in out and "kept existing postgres" in out
        rows = pg.server.execute(
            "SELECT rolcanlogin, rolconnlimit, rolpassword IS NOT NULL FROM pg_authid "
            "WHERE rolname = %s",
            (role,),
        )
        assert rows == [(True, 7, True)]
        assert pg.fingerprint(target) == pg.fingerprint()
    finally:
        pg.server.execute(f"DROP ROLE IF EXISTS {role}")


def test_verify_restore_records_the_drill_and_leaves_no_scratch(pg):
    assert pg.cli("backup", "postgres", "--verify-restore") == ExitCode.OK
    _, artifacts = _artifacts(pg)
    assert artifacts[0].verify_state == "ok"
    assert "restore drill passed" in artifacts[0].verify_detail
    assert not [n for n in pg.databases() if n.startswith("jarvis_scratch_")]


def test_output_copy_restores_by_path_and_decrypts_to_plain_sql(pg, tmp_path, capsys):
    copy_dir = tmp_path / "copies"
    copy_dir.mkdir()
    assert pg.cli("backup", "postgres", "--output", str(copy_dir)) == ExitCode.OK
    copies = sorted(copy_dir.glob("*.enc"))
    assert len(copies) == 2 and all(read_sidecar(c)["checksum"] for c in copies)
    dump = next(c for c in copies if "_full.dump" in c.name)

    target = f"{pg.source}_from_file"
    assert pg.cli("restore", "postgres", str(dump), "--target-db", target) == ExitCode.OK
    assert pg.fingerprint(target) == pg.fingerprint()

    sql_path = tmp_path / "backup.sql.gz"
    assert pg.cli("decrypt", "--sql", str(dump), "-o", str(sql_path)) == ExitCode.OK
    listing = subprocess.run(
        f"gunzip -c {sql_path} | grep 'CREATE TABLE'", shell=True, capture_output=True, text=True
    ).stdout
    assert "CREATE TABLE app.users (" in listing and "CREATE TABLE public.orders (" in listing
    with gzip.open(sql_path, "rt", encoding="utf-8") as sql_text:
        assert "Grüße" in sql_text.read()
    globals_sql = tmp_path / "globals.sql.gz"
    globals_copy = next(c for c in copies if "_globals" in c.name)
    assert pg.cli("decrypt", "--sql", str(globals_copy), "-o", str(globals_sql)) == 0
    assert "CREATE ROLE postgres;" in gzip.decompress(globals_sql.read_bytes()).decode()


def test_metadata_sidecar_and_catalog_hold_no_password(pg, tmp_path):
    pg.env_file.write_text(pg.env_file.read_text() + "POSTGRES_PASSWORD=pg-secret-Hunter2\n")
    assert pg.cli("backup", "postgres", "--mode", "schema") == ExitCode.OK
    _, artifacts = _artifacts(pg)
    sidecar = read_sidecar(pg.tmp_path / "repo" / artifacts[0].relpath)
    assert "pg-secret-Hunter2" not in json.dumps(sidecar)
    assert b"pg-secret-Hunter2" not in (tmp_path / "catalog.sqlite3").read_bytes()
    log = b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("*"))
    assert b"pg-secret-Hunter2" not in log
