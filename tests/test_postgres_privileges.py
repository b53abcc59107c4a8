"""Owners and grants survive a backup and restore, so an application that connects as its
own role keeps working; where the roles are missing the dry run says so and
`--no-owner` / `--no-acl` restore without them."""

import pytest

from engines.jobs import run_job
from engines.postgres import archive_stream
from engines.postgres.privileges import roles_in_grants
from engines.postgres.verify import verify_by_restore
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import PgCase

PRIVILEGES = """
SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text[]
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (('public', 'orders'), ('app', 'users'))
UNION ALL SELECT 'schema ' || nspname, pg_get_userbyid(nspowner), nspacl::text[]
FROM pg_namespace WHERE nspname = 'app'
ORDER BY 1
"""


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    suffix = case.source[-6:]
    case.app_role, case.reader_role = f"jarvis_app_{suffix}", f"jarvis_reader_{suffix}"
    postgres_server.execute(f"CREATE ROLE {case.app_role}; CREATE ROLE {case.reader_role}")
    postgres_server.execute(
        f"ALTER TABLE public.orders OWNER TO {case.app_role};"
        f"GRANT SELECT, UPDATE (note) ON public.orders TO {case.reader_role};"
        f"GRANT USAGE ON SCHEMA app TO {case.reader_role};"
        f"GRANT SELECT ON app.users TO {case.reader_role};",
        dbname=case.source,
    )
    yield case
    case.cleanup()
    for role in (case.app_role, case.reader_role):
        for database in case.databases() & {case.source}:
            postgres_server.execute(f"DROP OWNED BY {role} CASCADE", dbname=database)
        postgres_server.execute(f"DROP ROLE IF EXISTS {role}")


def _privileges(case: PgCase, database: str) -> list[tuple]:
    return case.server.execute(PRIVILEGES, dbname=database)


def _drop_role(case: PgCase, role: str) -> None:
    case.server.execute(
        f"REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}", dbname=case.source
    )
    case.server.execute(f"DROP ROLE {role}")


def test_owners_and_grants_are_restored_for_a_database_and_for_a_table(pg, capsys):
    source = _privileges(pg, pg.source)
    assert source[0][:2] == ("orders", pg.app_role)
    assert any(pg.reader_role in entry for entry in source[0][2])
    assert pg.cli("backup", "postgres") == ExitCode.OK
    capsys.readouterr()

    whole = f"{pg.source}_whole"
    assert pg.cli("restore", "postgres", "latest", "--target-db", whole, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"owners and grants: restored as in the backup (roles {pg.app_role}" in out
    assert pg.cli("restore", "postgres", "latest", "--target-db", whole) == ExitCode.OK
    assert _privileges(pg, whole) == source
    assert pg.fingerprint(whole) == pg.fingerprint()

    table = f"{pg.source}_table"
    pg.server.create_database(table)
    code = pg.cli("restore", "postgres", "latest", "--target-db", table, "--table", "app.users")
    assert code == ExitCode.OK
    assert _privileges(pg, table) == source[1:]  # the schema app and the table


def test_without_the_c_walker_owners_and_grants_are_restored_too(pg, monkeypatch):
    monkeypatch.setattr(archive_stream, "AVAILABLE", False)  # installed without a C compiler
    source = _privileges(pg, pg.source)
    assert pg.cli("backup", "postgres") == ExitCode.OK
    target = f"{pg.source}_pg_restore"  # streamed into one pg_restore, grants last
    code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--jobs", "1")
    assert code == ExitCode.OK
    assert _privileges(pg, target) == source
    assert "schema and data loaded" in pg.job_log()


def test_a_missing_owner_is_named_by_the_dry_run_and_no_owner_restores_without_it(
    pg, capsys, caplog
):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    _drop_role(pg, pg.app_role)
    capsys.readouterr()
    target = f"{pg.source}_restored"

    code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--dry-run")
    out = capsys.readouterr().out
    assert code == ExitCode.FAILED
    assert f"role(s) {pg.app_role} (owner) named in the backup do not exist" in out
    assert "--with-globals" in out and "--no-owner" in out
    assert pg.cli("restore", "postgres", "latest", "--target-db", target) == ExitCode.FAILED
    assert pg.app_role in capsys.readouterr().err
    assert target not in pg.databases()

    code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--no-owner",
                  "--dry-run")  # fmt: skip
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert f"owners: not restored (--no-owner): the backup's owner(s) {pg.app_role}" in out
    code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--no-owner")
    assert code == ExitCode.OK
    (orders, owner, acl), (_, _, schema_acl), (_, _, users_acl) = _privileges(pg, target)
    assert orders == "orders" and owner == "postgres"
    assert any(entry.startswith(f"{pg.reader_role}=r") for entry in acl)
    assert any(entry.startswith(f"{pg.reader_role}=r") for entry in users_acl)
    assert any(entry.startswith(f"{pg.reader_role}=U") for entry in schema_acl)

    # The restore drill checks the data: it leaves the owners out and says so.
    with pg.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "postgres")
        (dump,) = [a for a in workspace.catalog.artifacts_of(backup_set.id) if a.mode == "full"]
        run_job(
            workspace.catalog, "verify", "drill", lambda c: verify_by_restore(workspace, dump, c)
        )
        (drilled,) = [a for a in workspace.catalog.artifacts_of(backup_set.id) if a.id == dump.id]
        assert drilled.verify_state == "ok"
    assert f"role(s) {pg.app_role} named in the backup do not exist" in caplog.text
    assert "the drill restores without owners" in caplog.text

    # --with-globals creates the role from the backup, and then it owns the table again.
    again = f"{pg.source}_with_globals"
    code = pg.cli("restore", "postgres", "latest", "--target-db", again, "--with-globals",
                  "--dry-run")  # fmt: skip
    assert code == ExitCode.OK, capsys.readouterr().out
    code = pg.cli("restore", "postgres", "latest", "--target-db", again, "--with-globals")
    assert code == ExitCode.OK
    assert _privileges(pg, again)[0][1] == pg.app_role


def test_grants_come_after_the_data_so_the_application_role_can_restore(pg):
    """Restoring as the application's own role (not a superuser): its REVOKE of its own
    INSERT on a table it owns would stop the COPY if grants came before the data."""
    app = pg.app_role
    pg.server.execute(
        f"ALTER SCHEMA app OWNER TO {app}; ALTER TABLE app.users OWNER TO {app};"
        f"REVOKE INSERT ON app.users FROM {app}",
        dbname=pg.source,
    )
    source = _privileges(pg, pg.source)
    assert pg.cli("backup", "postgres") == ExitCode.OK
    pg.server.execute(f"ALTER ROLE {app} LOGIN CREATEDB; GRANT postgres TO {app}")
    pg.env_file.write_text(pg.env_file.read_text() + f"POSTGRES_USER={app}\n")
    target = f"{pg.source}_by_app"
    assert pg.cli("restore", "postgres", "latest", "--target-db", target) == ExitCode.OK
    assert _privileges(pg, target) == source
    assert pg.fingerprint(target)["contents"] == pg.fingerprint()["contents"]


def test_roles_named_by_grants_are_read_from_pg_restores_sql():
    script = "\n".join(
        [
            "REVOKE ALL ON TABLE app.t FROM owner_role;",
            'GRANT SELECT(note),UPDATE(note) ON TABLE public.orders TO "Reader ""Q""";',
            "GRANT ALL ON SCHEMA public TO PUBLIC;",
            "SET SESSION AUTHORIZATION grantor;",
            "GRANT SELECT ON TABLE app.t TO reader WITH GRANT OPTION;",
            "RESET SESSION AUTHORIZATION;",
            "ALTER DEFAULT PRIVILEGES FOR ROLE definer IN SCHEMA app GRANT SELECT ON TABLES"
            "  TO viewer;",
            "GRANT USAGE ON SCHEMA app TO helper GRANTED BY boss;",
            "-- GRANT SELECT ON TABLE x TO commented_out;",
        ]
    )
    assert roles_in_grants(script) == {
        "owner_role",
        'Reader "Q"',
        "grantor",
        "reader",
        "definer",
        "viewer",
        "helper",
        "boss",
    }
