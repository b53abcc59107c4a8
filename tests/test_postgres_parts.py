"""The PostgreSQL engine's pure parts: names, settings, TOC lines, globals scripts."""

from datetime import UTC, datetime

import pytest

from engines.config import load_settings
from engines.errors import JarvisError
from engines.postgres import archive_stream
from engines.postgres.connection import check_identifier, target_from_settings
from engines.postgres.databases import previous_name
from engines.postgres.globals import roles_in, statements
from engines.postgres.inspect import TableInfo
from engines.postgres.loader import row_count_check
from engines.postgres.session import loads_faster_streamed
from engines.postgres.toc import parse_entry, select_tables

LISTING = """\
6; 2615 16385 SCHEMA - app postgres
216; 1259 16387 TABLE app users postgres
215; 1259 16386 SEQUENCE app users_id_seq postgres
3393; 0 0 SEQUENCE OWNED BY app users_id_seq postgres
218; 1259 16400 TABLE public odd name postgres
3394; 0 0 COMMENT app TABLE users postgres
3225; 2604 16390 DEFAULT app users id postgres
3379; 0 16387 TABLE DATA app users postgres
3381; 0 16400 TABLE DATA public odd name postgres
3395; 0 0 SEQUENCE SET app users_id_seq postgres
3386; 0 0 BLOBS - BLOBS \n3231; 2606 16395 CONSTRAINT app users users_pkey postgres
3229; 1259 16398 INDEX app users_note postgres
3232; 2606 16408 FK CONSTRAINT public odd name odd_fkey postgres
3400; 0 0 ACL - SCHEMA app app_owner
3401; 0 0 ACL app TABLE users app_owner
3402; 0 0 ACL app SEQUENCE users_id_seq app_owner
3403; 0 0 ACL public TABLE odd name postgres
"""


def test_toc_lines_parse_with_multi_word_kinds_spaces_and_empty_owner():
    entries = [parse_entry(line) for line in LISTING.splitlines()]
    assert all(entries)
    by_id = {e.dump_id: e for e in entries}
    assert (by_id[3379].desc, by_id[3379].schema, by_id[3379].name) == (
        "TABLE DATA",
        "app",
        "users",
    )
    assert (by_id[3381].name, by_id[3232].desc) == ("odd name", "FK CONSTRAINT")
    assert (by_id[3386].desc, by_id[3386].schema) == ("BLOBS", None)
    assert by_id[6].name == "app"
    assert (by_id[3401].desc, by_id[3401].name, by_id[3401].owner) == (
        "ACL",
        "TABLE users",
        "app_owner",
    )
    assert (by_id[3400].schema, by_id[3400].name, by_id[3386].owner) == (None, "SCHEMA app", "")

    chosen = select_tables(
        entries,
        [("app", "users")],
        indexes={("app", "users"): ["users_note", "users_pkey"]},
        sequences={("app", "users"): ["users_id_seq"]},
    )
    assert [e.dump_id for e in chosen] == [
        *(216, 215, 3393, 3394, 3225, 3379, 3395, 3231, 3229),
        *(3401, 3402),  # the grants of the table and of its sequence
    ]
    odd = select_tables(entries, [("public", "odd name")], indexes={}, sequences={})
    assert [e.dump_id for e in odd] == [218, 3381, 3232, 3403]


@pytest.mark.parametrize("name", ["jarvis_db", "Jarvis-Prod", "_x1", "a$b"])
def test_valid_identifiers_pass(name):
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "1db", "has space", 'quo"te', "semi;colon", "x" * 64])
def test_invalid_identifiers_are_refused_with_the_rule(name):
    with pytest.raises(JarvisError, match="not a valid identifier: use letters"):
        check_identifier(name)


def test_previous_name_fits_63_bytes_and_keeps_the_time():
    when = datetime(2025, 10, 17, 2, 0, 5, tzinfo=UTC)
    assert previous_name("jarvis_db", when) == "jarvis_db_pre_restore_20251017T020005Z"
    long = previous_name("d" * 63, when, attempt=3)
    assert len(long.encode()) == 63 and long.endswith("_pre_restore_20251017T020005Z_3")


def test_database_url_wins_for_the_server_and_postgres_db_picks_the_database(tmp_path):
    (tmp_path / "none.env").write_text("")
    url = "postgresql://app%40svc:s3cr%2Ft@db.internal:6543/jarvis_db?sslmode=require"
    settings = load_settings({"DATABASE_URL": url}, env_file=tmp_path / "none.env")
    target = target_from_settings(settings)
    assert (target.host, target.port, target.user, target.database) == (
        "db.internal", 6543, "app@svc", "jarvis_db",
    )  # fmt: skip
    assert target.password is not None and target.password.reveal() == "s3cr/t"
    assert target.tool_environment()["PGPASSWORD"] == "s3cr/t"
    assert target.tool_environment()["PGSSLMODE"] == "require"
    assert "s3cr" not in target.describe() and "s3cr" not in repr(target)

    restored = load_settings(
        {"DATABASE_URL": url, "POSTGRES_DB": "jarvis_db_restored"}, env_file=tmp_path / "none.env"
    )
    assert target_from_settings(restored).database == "jarvis_db_restored"


def test_globals_script_statements_and_roles():
    script = (
        "--\n-- Roles\n--\n\\restrict abc\nSET client_encoding = 'UTF8';\n"
        'CREATE ROLE "Odd ""Name""";\nALTER ROLE "Odd ""Name""" WITH LOGIN;\n'
        "CREATE ROLE app;\nALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$x';\n"
        "\\unrestrict abc\n"
    )
    assert len(statements(script)) == 5
    assert roles_in(script) == ['Odd "Name"', "app"]


def test_row_count_check_quotes_names_and_skips_uncounted_tables():
    check = row_count_check(
        [TableInfo("app", 'we"ird', 12), TableInfo("public", "parent", None, partitioned=True)]
    )
    assert 'FROM "app"."we""ird"' in check and "IF n <> 12" in check
    assert "parent" not in check
    assert row_count_check([TableInfo("public", "t", None)]) == ""


def test_fresh_database_counts_fall_back_to_an_exact_count(postgres_server):
    from engines.postgres.connection import PostgresTarget, connect
    from engines.postgres.inspect import compare_tables, fresh_database_counts, list_tables

    postgres_server.drop_database("counts_check")
    postgres_server.create_database("counts_check")
    postgres_server.execute(
        "CREATE TABLE loaded AS SELECT g FROM generate_series(1, 50) g;"
        "CREATE TABLE trimmed AS SELECT g FROM generate_series(1, 40) g;"
        "DELETE FROM trimmed WHERE g > 30;",
        dbname="counts_check",
    )
    server = PostgresTarget(postgres_server.host, postgres_server.port, "postgres", "counts_check")
    with connect(server) as conn:
        tables = list_tables(conn)
        expected = {"public.loaded": 50, "public.trimmed": 30}
        counted = {t.qualified: t.rows for t in fresh_database_counts(conn, tables, expected)}
        assert counted == {"public.loaded": 50, "public.trimmed": 30}
        wrong = {"public.loaded": 51, "public.trimmed": 30}
        recounted = fresh_database_counts(conn, tables, wrong, settle_s=0.2)
    expected_tables = [TableInfo("public", "loaded", 51), TableInfo("public", "trimmed", 30)]
    problems = compare_tables(expected_tables, recounted, check_counts=True).problems()
    assert problems == ["public.loaded: 50 rows restored, 51 in the backup"]
    postgres_server.drop_database("counts_check")


@pytest.mark.parametrize(
    ("rows", "jobs", "streamed"),
    [
        ([6_500_000, 100, 10, 0], 2, True),  # pgbench: one table is nearly everything
        ([3_400_000], 4, True),
        ([300, 900, 0], 2, False),  # the biggest has 75%: loading two at once pays
        ([500, 500, 500, 500], 4, False),
        ([500, 500, 500, 500], 1, True),  # one job loads one table at a time anyway
        ([None, 0], 2, True),  # schema only, or empty tables
    ],
)
def test_without_the_c_walker_a_database_streams_when_parallel_loading_cannot_gain_much(
    rows, jobs, streamed, monkeypatch
):
    monkeypatch.setattr(archive_stream, "AVAILABLE", False)  # no parallel COPYs then
    metadata = {
        "tables": [{"schema": "public", "name": f"t{i}", "rows": n} for i, n in enumerate(rows)]
    }
    assert loads_faster_streamed(metadata, jobs) is streamed


def test_with_the_c_walker_a_database_always_streams_into_parallel_copies():
    assert archive_stream.AVAILABLE
    tables = [{"schema": "public", "name": f"t{i}", "rows": 500} for i in range(4)]
    assert loads_faster_streamed({"tables": tables, "large_objects": 2}, 4) is True
