"""Whole-database restores whose table data goes through several COPYs at once
(copy_load): what they load, and what a failed, cancelled or killed load leaves."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.errors import JobCancelledError
from engines.pipeline.artifacts import open_artifact_plain, write_artifact
from engines.postgres.archive_layout import read_table_of_contents
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import PgCase, seeded_template
from tests.support.processes import wait_until
from tests.test_postgres_archive_layout import AWKWARD_SQL
from tests.test_postgres_archive_stream import MARKERS_SQL
from tests.test_postgres_kill import BIG_TABLE, cancel_restore_when, kill_restore_when

CLI = Path(sys.executable).with_name("jarvis-tui")

# No large objects (those go through pg_restore), and beside the seed's tables: COPY text
# full of escapes, a partitioned table, a generated column, XML fragments, arrays, times
# and intervals, a table in a schema with a non-ASCII name, and one big enough (about
# 25 MB of COPY text) to be dealt out in pieces.
EXTRA_SQL = (
    AWKWARD_SQL
    + MARKERS_SQL
    + """
SELECT lo_unlink(oid) FROM pg_largeobject_metadata;
CREATE TABLE public.readings (at date NOT NULL, value numeric) PARTITION BY RANGE (at);
CREATE TABLE public.readings_2024 PARTITION OF public.readings
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.readings_2025 PARTITION OF public.readings
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO public.readings SELECT date '2024-06-01' + g % 400, g / 7.0
  FROM generate_series(1, 3000) AS g;
CREATE TABLE public.priced (net numeric, gross numeric GENERATED ALWAYS AS (net * 1.19) STORED);
INSERT INTO public.priced (net) SELECT g FROM generate_series(1, 100) AS g;
CREATE TABLE public.notes (body xml, spans int4range[], stamp timestamptz, pause interval);
INSERT INTO public.notes VALUES ('a <b>fragment</b>, not a document', '{"[1,5)","[7,9)"}',
    '2024-02-29 23:59:59.999999+05:30', '1 year 2 mons -3 days 04:05:06.5');
CREATE SCHEMA "Künstler";
CREATE TABLE "Künstler"."Werke" ("Titel" text PRIMARY KEY);
INSERT INTO "Künstler"."Werke" VALUES ('Träumerei'), ('Gymnopédie'), ('月の光');
"""
    + BIG_TABLE
)


@pytest.fixture(scope="module")
def extra_template(postgres_server) -> Iterator[str]:
    with seeded_template(postgres_server, EXTRA_SQL) as name:
        yield name


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server, extra_template):
    case = PgCase(postgres_server, tmp_path, template=extra_template)
    yield case
    case.cleanup()


ACTIVE_COPIES = (
    "SELECT pid FROM pg_stat_activity WHERE datname LIKE 'jarvis\\_scratch\\_%'"
    " AND state = 'active' AND query LIKE 'COPY public.events %'"
)


def _copy_sessions(case: PgCase) -> list[tuple[int]]:
    return case.server.execute(ACTIVE_COPIES)


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_every_table_loads_through_parallel_copies(pg, jobs):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    target = f"{pg.source}_copies{jobs}"
    code = pg.cli("restore", "postgres", "latest", "--target-db", target, "--jobs", jobs)
    assert code == ExitCode.OK
    assert pg.fingerprint(target) == pg.fingerprint()
    log = pg.job_log()
    assert f"loading table data through {jobs} COPY connection(s)" in log
    contents = pg.fingerprint()["contents"]
    total = sum(count for count, _ in contents.values()) - contents["public.readings"][0]
    assert f"COPY loaded {total} rows" in log  # a partitioned table's rows are its partitions'
    generated = "SELECT sum(gross) FROM public.priced"
    assert pg.server.execute(generated, dbname=target) == pg.server.execute(
        generated, dbname=pg.source
    )


def test_a_copy_killed_on_the_server_fails_the_restore_and_changes_nothing(pg):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before, databases = pg.fingerprint(), pg.databases()
    restoring = subprocess.Popen(
        [str(CLI), "--env-file", str(pg.env_file), "restore", "postgres", "latest",
         "--drop-existing", "--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        terminate_one = f"SELECT pg_terminate_backend(pid) FROM ({ACTIVE_COPIES} LIMIT 1) AS one"
        wait_until(lambda: bool(pg.server.execute(terminate_one)), 60, "a COPY to terminate")
        _, errors = restoring.communicate(timeout=60)
    finally:
        restoring.kill()
    assert restoring.returncode == ExitCode.FAILED
    assert "loading public.events failed" in errors
    assert f"database {pg.source} was not changed" in errors
    assert pg.fingerprint() == before
    assert pg.databases() == databases  # the scratch database was dropped


def test_cancel_during_the_copies_stops_them_and_changes_nothing(pg):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before, databases = pg.fingerprint(), pg.databases()
    outcome = cancel_restore_when(pg, lambda: bool(_copy_sessions(pg)), "a COPY into events", 2)
    assert [type(error) for error in outcome] == [JobCancelledError]
    assert not _copy_sessions(pg)
    assert pg.fingerprint() == before
    assert pg.databases() == databases
    assert "COPY loaded" not in pg.job_log()


def test_sigkill_during_the_copies_leaves_the_original(pg):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before = pg.fingerprint()
    kill_restore_when(pg, lambda: bool(_copy_sessions(pg)), "a COPY into events", "2")
    wait_until(lambda: not _copy_sessions(pg), 20, "the server to end the orphaned COPYs")
    assert pg.fingerprint() == before
    assert not [n for n in pg.databases() if "_pre_restore_" in n]

    assert pg.cli("restore", "postgres", "latest", "--drop-existing") == ExitCode.OK
    assert pg.fingerprint() == before
    assert not [n for n in pg.databases() if n.startswith("jarvis_scratch_")]


def test_an_authentic_archive_whose_data_cannot_be_walked_changes_nothing(pg, capsys):
    """An artifact that authenticates (sealed with our key, as a faulty pg_dump's output
    would be) but whose first data chunk has an impossible length: refused mid-load."""
    assert pg.cli("backup", "postgres") == ExitCode.OK
    with pg.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "postgres")
        dump = workspace.catalog.artifacts_of(backup_set.id)[0]
        keyring = workspace.keyring()
        with open_artifact_plain(workspace.repository.path_for(dump.relpath), keyring) as plain:
            archive = bytearray(plain.read())
        metadata = dict(dump.metadata)
    toc = read_table_of_contents(bytes(archive))
    assert toc is not None
    archive[toc.end + 1 + 1 + toc.int_size] = 1  # the first chunk's sign: negative
    forged = pg.tmp_path / "forged" / f"{backup_set.id}_forged_full.dump.gz.enc"
    forged.parent.mkdir()
    write_artifact([bytes(archive)], forged, keyring, metadata)
    before, databases = pg.fingerprint(), pg.databases()
    capsys.readouterr()

    code = pg.cli("restore", "postgres", str(forged), "--drop-existing")
    assert code == ExitCode.INTEGRITY
    error = capsys.readouterr().err
    assert "negative or impossible length" in error and "was not changed" in error
    assert pg.fingerprint() == before and pg.databases() == databases
