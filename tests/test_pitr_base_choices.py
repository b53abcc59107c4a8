"""A base backup never gets in the way of the logical restores (issue 16): `latest` is the
newest dump for a restore into a database and the newest base backup for one into a data
folder, `restore full latest` and `decrypt --sql latest` keep to their dumps, the drill
drills both kinds, and `--verify-restore` lays a new base backup out into a scratch folder."""

import pytest

from engines.actions.cleanup import plan_cleanup
from engines.monitoring.health import check_key
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import BASE_BACKUP_SETTINGS, KEY, PgCase


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path, **BASE_BACKUP_SETTINGS)
    yield case
    case.cleanup()


def _newest_set(pg: PgCase) -> str:
    with pg.workspace() as workspace:
        return workspace.catalog.list_backup_sets(limit=1)[0].id


def test_latest_is_the_dump_for_a_database_and_the_base_backup_for_a_folder(pg, tmp_path, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    dump_set = _newest_set(pg)
    folder = tmp_path / "pgdata"
    capsys.readouterr()
    assert pg.cli("restore", "postgres", "latest", "--pgdata", str(folder), "--dry-run") != 0
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"no PostgreSQL base backup yet (`jarvis-tui backup postgres --mode base` takes one); "
        f"the newest dump backup is {dump_set}: restore it without --pgdata"
    )
    assert len(err.splitlines()) == 1

    assert pg.cli("backup", "postgres", "--mode", "base") == ExitCode.OK
    base_set = _newest_set(pg)
    assert base_set != dump_set
    capsys.readouterr()
    assert pg.cli("restore", "postgres", "latest", "--drop-existing", "--dry-run") == 0
    assert f"(dry run) of postgres from postgres/{dump_set}_" in pg.job_log()
    assert pg.cli("restore", "postgres", "latest", "--pgdata", str(folder), "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would lay out base backup postgres/{base_set}" in out and not folder.exists()
    sql = tmp_path / "dump.sql.gz"  # the dump set (its database and globals), not the base
    assert pg.cli("decrypt", "latest", "--sql", "--output", str(sql)) != ExitCode.OK
    assert f"{dump_set} holds 2 artifacts" in capsys.readouterr().err

    with pg.workspace() as workspace:  # retention: the base backup takes no slot of the dump
        kept = {d.candidate.set_id: d.text for d in plan_cleanup(workspace).decisions}
    assert "newest postgres" in kept[dump_set] and "daily" in kept[dump_set]
    assert "newest postgres base backup" in kept[base_set] and "daily" in kept[base_set]
    with pg.workspace() as workspace:  # what the console's delete warns it is the newest of
        newest = workspace.catalog.newest_restorable_backups()
    assert newest == {"postgres": dump_set, "postgres base backup": base_set}

    # The drill: the newest dump restored into a scratch database AND the newer base backup
    # laid out into a scratch folder, neither in place of the other.
    assert pg.cli("drill") == ExitCode.OK
    log = pg.job_log()
    assert f"restore drill: postgres/{dump_set}" in log
    assert f"restore drill: postgres/{base_set}" in log
    assert "restored into a scratch database" in log and "into a scratch folder" in log


def test_restore_full_latest_passes_over_a_newer_base_backup(pg, tmp_path, capsys):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "song.txt").write_text("la la")
    (tmp_path / "app.env").write_text("APP_TOKEN=abc\n")
    with pg.env_file.open("a") as settings:
        settings.write(f"BACKUP_FILE_PATHS={tmp_path / 'files'}\n")
        settings.write(f"BACKUP_SECRET_FILES={tmp_path / 'app.env'}\n")
    assert pg.cli("backup", "full") == ExitCode.OK
    full_set = _newest_set(pg)
    assert pg.cli("backup", "postgres", "--mode", "base") == ExitCode.OK
    capsys.readouterr()
    assert pg.cli("restore", "full", "latest", "--dry-run") == ExitCode.OK
    out = capsys.readouterr().out
    assert full_set in out and "would" in out
    with pg.workspace() as workspace:  # the newest good PostgreSQL backup: either kind
        newest = workspace.catalog.last_good_backups()["postgres"].set_id
    assert newest != full_set and newest.startswith("postgres_")


def test_verify_restore_lays_a_new_base_backup_out_into_a_scratch_folder(pg):
    assert pg.cli("backup", "postgres", "--mode", "schema") == ExitCode.OK
    dump_set = _newest_set(pg)
    # A new key with the dump's one forgotten: health must still see the dump needs it.
    pg.env_file.write_text(pg.env_file.read_text().replace(KEY, "fedcba9876543210" * 4))
    assert pg.cli("backup", "postgres", "--mode", "base", "--verify-restore") == ExitCode.OK
    log = pg.job_log()
    assert "restore drill passed: laid out base backup" in log and "into a scratch folder" in log
    with pg.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "postgres", base=True)
        (artifact,) = workspace.catalog.artifacts_of(backup_set.id)
        assert artifact.verify_state == "ok"
        scratch = [p for p in workspace.local_root.rglob("*") if "base-drill" in p.name]
    assert scratch and all(p.is_dir() and not any(p.iterdir()) for p in scratch)  # removed
    with pg.workspace() as workspace:
        (key,) = check_key(workspace.settings, workspace.catalog)
    assert not key.ok and f"postgres/{dump_set}_" in key.detail
