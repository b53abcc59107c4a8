"""The row counts a PostgreSQL backup records: those of the dump's own snapshot, counted
from the COPY data as it streams past, or on the server when the walk cannot read it."""

import threading

import psycopg
import pytest

from engines.postgres import archive_layout, archive_stream
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import PgCase

BIG_ORDERS = """
INSERT INTO public.orders (user_id, amount, note)
SELECT 1 + g % 300, g % 97, repeat('row ' || g, 8) FROM generate_series(1, 200000) AS g;
"""


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    postgres_server.execute(BIG_ORDERS, dbname=case.source)
    yield case
    case.cleanup()


def _recorded_rows(case: PgCase) -> dict[str, int]:
    with case.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest")
        dump = workspace.catalog.artifacts_of(backup_set.id)[0]
        return {f"{t['schema']}.{t['name']}": t["rows"] for t in dump.metadata["tables"]}


def test_rows_written_while_the_dump_runs_are_neither_dumped_nor_counted(pg):
    stop = threading.Event()
    inserted = []

    def keep_inserting() -> None:
        with psycopg.connect(pg.server.dsn(pg.source), autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO public.orders (user_id, amount) VALUES (1, 1)")
                inserted.append(1)

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        assert pg.cli("backup", "postgres") == ExitCode.OK
    finally:
        stop.set()
        writer.join()
    assert inserted, "the writer never ran"
    recorded = _recorded_rows(pg)
    live = pg.server.execute("SELECT count(*) FROM public.orders", dbname=pg.source)[0][0]
    assert 200_900 <= recorded["public.orders"] < live

    target = f"{pg.source}_counted"
    assert pg.cli("restore", "postgres", "latest", "--target-db", target) == ExitCode.OK
    restored = pg.server.execute("SELECT count(*) FROM public.orders", dbname=target)[0][0]
    assert restored == recorded["public.orders"]
    assert "rows were counted on the server" not in pg.job_log()


def test_an_archive_the_walk_cannot_read_is_counted_on_the_server(pg, monkeypatch):
    # As a newer pg_dump's archive version would be: the walk stops, the backup does not.
    monkeypatch.setattr(archive_layout, "NEWEST", (1, 12))
    assert pg.cli("backup", "postgres") == ExitCode.OK
    assert _recorded_rows(pg) == {
        "app.users": 300,
        "public.empty_table": 0,
        "public.orders": 200_900,
    }
    assert "rows were counted on the server" in pg.job_log()


def test_without_the_c_walker_rows_are_counted_on_the_server_and_pg_restore_loads(pg, monkeypatch):
    # A machine that had no C compiler when the package was installed.
    monkeypatch.setattr(archive_stream, "AVAILABLE", False)
    assert pg.cli("backup", "postgres") == ExitCode.OK
    assert _recorded_rows(pg)["public.orders"] == 200_900
    target = f"{pg.source}_without_c"
    assert pg.cli("restore", "postgres", "latest", "--target-db", target) == ExitCode.OK
    assert pg.fingerprint(target) == pg.fingerprint()
    assert "COPY connection" not in pg.job_log()
