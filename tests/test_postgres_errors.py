"""Bad input to `backup postgres` / `restore postgres`: a clear error, non-zero exit, no change."""

import pytest

from engines.errors import IntegrityError
from engines.jobs import JobContext, run_job
from engines.pipeline.artifacts import read_sidecar, write_artifact
from engines.pipeline.crypto import Keyring, MasterKey
from engines.postgres.archive_layout import read_table_of_contents
from engines.postgres.streamed_archive import authenticated_stream
from engines.postgres.tools import VersionMismatchError, choose_tools, installed_tools
from engines.repository.resolve import ResolvedArtifact
from jarvis_tui.exit_codes import ExitCode
from tests.support.file_systems import needs_root, tmpfs
from tests.support.pg_seed import PASSWORD, PgCase
from tests.support.processes import free_port

PASSWORD_USER = "jarvis_pw_user"


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    yield case
    case.cleanup()


@pytest.fixture(scope="module")
def password_user(postgres_server):
    """A role that must log in with a password (scram), ahead of the harness's trust rules."""
    hba = postgres_server.data_dir / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n{original}")
    postgres_server.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    postgres_server.execute("SELECT pg_reload_conf()")
    yield PASSWORD_USER
    hba.write_text(original)
    postgres_server.execute("SELECT pg_reload_conf()")
    postgres_server.execute(f"DROP ROLE {PASSWORD_USER}")


def _set(case: PgCase, **values: str) -> None:
    text = case.env_file.read_text()
    for name, value in values.items():
        lines = [line for line in text.splitlines() if not line.startswith(f"{name}=")]
        text = "\n".join([*lines, f"{name}={value}"]) + "\n"
    case.env_file.write_text(text)


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_wrong_password_names_the_server_never_the_password(pg, capsys, password_user):
    _set(pg, POSTGRES_USER=password_user, POSTGRES_PASSWORD="not-the-password")
    assert pg.cli("backup", "postgres") == ExitCode.FAILED
    err = _error(capsys)
    host, port = pg.server.host, pg.server.port
    assert f"{host}:{port}" in err and password_user in err and pg.source in err
    assert "refused the password" in err and "not-the-password" not in err

    _set(pg, POSTGRES_PASSWORD=PASSWORD)  # and the right one works through PGPASSWORD
    assert pg.cli("backup", "postgres", "--mode", "schema") == ExitCode.OK
    log = b"".join(p.read_bytes() for p in (pg.tmp_path / "logs").glob("*"))
    assert PASSWORD.encode() not in log


def test_unreachable_server_and_missing_database(pg, capsys):
    port = free_port()
    _set(pg, POSTGRES_PORT=str(port))
    assert pg.cli("backup", "postgres") == ExitCode.FAILED
    err = _error(capsys)
    assert f"127.0.0.1:{port}" in err and "connection refused" in err and "postgres" in err

    _set(pg, POSTGRES_PORT=str(pg.server.port))
    assert pg.cli("backup", "postgres", "--database", "no_such_db") == ExitCode.NOT_FOUND
    err = _error(capsys)
    assert 'database "no_such_db"' in err and "does not exist" in err
    with pg.workspace() as workspace:
        assert all(s.status == "failed" for s in workspace.catalog.list_backup_sets())


def test_version_mismatch_says_which_versions_and_what_to_do():
    tools = installed_tools()
    assert tools, "the PostgreSQL client tools the harness uses"
    newest = tools[-1]
    future = newest.major + 3
    with pytest.raises(VersionMismatchError) as caught:
        choose_tools(future * 10000 + 1, f"{future}.1", tools)
    message = str(caught.value)
    assert f"PostgreSQL {future}.1" in message and newest.version in message
    assert f"postgresql-client-{future}" in message
    assert choose_tools(newest.major * 10000, f"{newest.major}.0", tools) == newest


def _first_dump(case: PgCase):
    with case.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "postgres")
        dump = workspace.catalog.artifacts_of(backup_set.id)[0]
        return workspace.repository.path_for(dump.relpath)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_artifact_is_refused_before_any_change(pg, capsys, damage):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    path = _first_dump(pg)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    else:
        del data[len(data) - 100 :]
    path.write_bytes(bytes(data))
    databases, before = pg.databases(), pg.fingerprint()
    target = f"{pg.source}_never"
    code = pg.cli("restore", "postgres", "latest", "--target-db", target)
    assert code == ExitCode.INTEGRITY
    assert "truncated" in _error(capsys) or damage == "flip"
    code = pg.cli("restore", "postgres", "latest", "--drop-existing")
    assert code == ExitCode.INTEGRITY
    assert pg.databases() == databases and pg.fingerprint() == before
    leftovers = list((pg.tmp_path / "repo" / ".postgres-restore").glob("*/*"))
    assert leftovers == []


def test_wrong_key_is_refused(pg, capsys):
    assert pg.cli("backup", "postgres", "--mode", "schema") == ExitCode.OK
    _set(pg, BACKUP_ENCRYPTION_KEY="f" * 64)
    databases = pg.databases()
    assert pg.cli("restore", "postgres", "latest", "--target-db", "x_db") == ExitCode.KEY_MISSING
    assert "BACKUP_ENCRYPTION_KEY_PREVIOUS" in _error(capsys)
    assert pg.databases() == databases


def test_artifact_of_another_type_is_refused(pg, capsys):
    keyring = Keyring(MasterKey.from_hex("0123456789abcdef" * 4))
    other = pg.tmp_path / "repo" / "redis" / "some.rdb.gz.enc"
    other.parent.mkdir(parents=True)
    write_artifact(
        [b"REDIS0011 not a dump"],
        other,
        keyring,
        {"set_id": "redis_x", "set_kind": "redis", "source": "redis", "mode": "rdb"},
    )
    databases = pg.databases()
    assert pg.cli("restore", "postgres", str(other), "--target-db", "x_db") == ExitCode.FAILED
    err = _error(capsys)
    assert "is a redis artifact, not postgres" in err and "restore redis" in err
    assert pg.databases() == databases


@pytest.mark.parametrize("name", ["bad name", "x;drop", "1abc", "a" * 64, "ü_db"])
def test_invalid_target_database_name_is_refused(pg, capsys, name):
    assert pg.cli("backup", "postgres", "--mode", "schema") == ExitCode.OK
    databases = pg.databases()
    assert pg.cli("restore", "postgres", "latest", "--target-db", name) == ExitCode.FAILED
    assert "not a valid identifier" in _error(capsys)
    assert pg.databases() == databases


@needs_root
def test_too_little_space_fails_early_with_an_alert(pg, capsys):
    with tmpfs(pg.tmp_path / "small", "1m") as small:
        _set(pg, BACKUP_DIR=str(small))
        assert pg.cli("backup", "postgres") == ExitCode.NO_SPACE
        err = _error(capsys)
        assert "not enough free space" in err and str(small) in err and "needed" in err
        assert not list((small / "postgres").rglob("*.enc"))  # sets/ keeps the failed record
        with pg.workspace() as workspace:
            alerts = workspace.catalog.list_alerts()
        kinds = {(alert.kind, alert.severity) for alert in alerts}
        assert {("disk_space", "critical"), ("backup_failure:postgres", "critical")} <= kinds


def test_an_artifact_changed_after_authentication_fails_the_streamed_load(pg):
    """The stream authenticates every chunk again: a swap between the passes is caught."""
    assert pg.cli("backup", "postgres") == ExitCode.OK
    path = _first_dump(pg)
    original = path.read_bytes()

    def stream_after_damage(context: JobContext) -> None:
        with pg.workspace() as workspace:
            resolved = ResolvedArtifact(path, None, read_sidecar(path))
            keyring, root = workspace.keyring(), workspace.repository.root
            with authenticated_stream(resolved, keyring, root, context) as archive:
                toc = read_table_of_contents(archive.path.read_bytes())
                assert toc is not None and toc.end == archive.path.stat().st_size
                damaged = bytearray(original)
                damaged[len(damaged) // 2] ^= 0x40
                path.write_bytes(bytes(damaged))
                with pytest.raises(IntegrityError, match="failed authentication"):
                    for _ in archive.plain_blocks():
                        pass
                path.write_bytes(original)
                assert (
                    sum(len(block) for block in archive.plain_blocks())
                    == (archive.metadata["plain_size"])
                )

    with pg.workspace() as workspace:
        run_job(workspace.catalog, "restore", "stream test", stream_after_damage)
