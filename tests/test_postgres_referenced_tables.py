"""`restore postgres --table T --drop-existing` where other tables hold foreign keys to T.

The seeded database has public.orders.user_id referencing app.users(id): the guide's own
example. The restore drops those foreign keys, replaces the rows and re-creates them in
one transaction, so the target ends up restored with its constraints checked, or as it
was.
"""

import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import PgCase

FOREIGN_KEYS = """
SELECT c.conname, c.conrelid::regclass::text, pg_get_constraintdef(c.oid), c.convalidated
FROM pg_constraint c WHERE c.contype = 'f' ORDER BY 1
"""


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    yield case
    case.cleanup()


def _foreign_keys(case: PgCase) -> list[tuple]:
    return case.server.execute(FOREIGN_KEYS, dbname=case.source)


def test_a_referenced_table_is_replaced_with_its_foreign_keys_checked(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backed_up = pg.fingerprint()
    keys_before = _foreign_keys(pg)
    assert [k[0] for k in keys_before] == ["orders_user_id_fkey"]
    pg.server.execute("UPDATE app.users SET name = 'changed'", dbname=pg.source)
    changed = pg.fingerprint()
    capsys.readouterr()

    code = pg.cli("restore", "postgres", "latest", "--table", "users", "--drop-existing",
                  "--dry-run")  # fmt: skip
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert "foreign key orders_user_id_fkey on public.orders (900 rows)" in out
    assert "dropped and re-created in the same transaction" in out
    assert "fails and changes nothing if rows there reference keys the backup lacks" in out
    assert pg.fingerprint() == changed

    code = pg.cli("restore", "postgres", "latest", "--table", "users", "--drop-existing")
    captured = capsys.readouterr()
    assert code == ExitCode.OK, captured.err
    assert "re-created and checked foreign key orders_user_id_fkey on public.orders" in (
        captured.out
    )
    now = pg.fingerprint()
    assert now["contents"]["app.users"] == backed_up["contents"]["app.users"]
    assert now["contents"]["public.orders"] == changed["contents"]["public.orders"]
    assert now["relations"] == backed_up["relations"]
    assert _foreign_keys(pg) == keys_before  # same definition, validated


def test_rows_referencing_keys_the_backup_lacks_fail_the_restore_and_change_nothing(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    backed_up = pg.fingerprint()
    pg.server.execute(
        "INSERT INTO app.users (id, email, name) VALUES (5001, 'new@example.com', 'new');"
        "INSERT INTO public.orders (user_id, amount) VALUES (5001, 1), (5001, 2);"
        "UPDATE app.users SET name = 'changed' WHERE id < 10",
        dbname=pg.source,
    )
    before = pg.fingerprint()
    keys_before = _foreign_keys(pg)
    capsys.readouterr()

    code = pg.cli("restore", "postgres", "latest", "--table", "app.users", "--drop-existing")
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    assert "Traceback" not in err
    assert "2 row(s) of public.orders reference keys of app.users the backup lacks" in err
    assert "orders_user_id_fkey" in err and "(user_id)=(5001)" in err
    assert "nothing was changed" in err
    assert pg.fingerprint() == before
    assert _foreign_keys(pg) == keys_before

    # As the hint says: restoring the referencing table too replaces both together.
    code = pg.cli("restore", "postgres", "latest", "--table", "app.users", "--table", "orders",
                  "--drop-existing")  # fmt: skip
    assert code == ExitCode.OK, capsys.readouterr().err
    now = pg.fingerprint()["contents"]
    for table in ("app.users", "public.orders"):
        assert now[table] == backed_up["contents"][table]
    assert _foreign_keys(pg) == keys_before
