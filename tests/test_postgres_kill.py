"""`restore --drop-existing` SIGKILLed half way: the original database is intact and readable."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from engines.actions.restore import run_restore
from engines.errors import JobCancelledError
from engines.jobs import JobContext, run_job
from engines.postgres.options import PostgresRestoreOptions
from jarvis_tui.exit_codes import ExitCode
from tests.support.pg_seed import PgCase, seeded_template
from tests.support.processes import wait_until

CLI = Path(sys.executable).with_name("jarvis-tui")
BIG_TABLE = """
CREATE TABLE public.events AS
SELECT g AS id, md5(g::text) AS digest, now() - g * interval '1 second' AS at
FROM generate_series(1, 400000) AS g;
CREATE INDEX events_digest_idx ON public.events (digest);
"""


@pytest.fixture(scope="module")
def big_template(postgres_server) -> Iterator[str]:
    with seeded_template(postgres_server, BIG_TABLE) as name:
        yield name


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server, big_template):
    case = PgCase(postgres_server, tmp_path, template=big_template)
    yield case
    case.cleanup()


def _pg_restore_sessions(case: PgCase) -> list[tuple[int, str]]:
    return case.server.execute(
        "SELECT pid, datname FROM pg_stat_activity"
        " WHERE application_name = 'pg_restore' AND datname LIKE 'jarvis\\_scratch\\_%'"
    )


def kill_restore_when(case: PgCase, ready: Callable[[], bool], what: str, jobs: str) -> None:
    """Start `restore postgres latest --drop-existing` in its own process and SIGKILL it
    once `ready()`."""
    restoring = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "restore", "postgres", "latest",
         "--drop-existing", "--jobs", jobs],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(ready, 60, what)
    finally:
        os.kill(restoring.pid, signal.SIGKILL)
        restoring.wait()
    assert restoring.returncode == -signal.SIGKILL


def cancel_restore_when(
    case: PgCase, ready: Callable[[], bool], what: str, jobs: int
) -> list[BaseException]:
    """Run `restore postgres latest --drop-existing` as a job on a thread, cancel it once
    `ready()`, and return what the job raised."""
    contexts: list[JobContext] = []
    outcome: list[BaseException] = []

    def restore(context: JobContext) -> None:
        contexts.append(context)
        options = PostgresRestoreOptions(drop_existing=True, jobs=jobs)
        run_restore(workspace, "postgres", "latest", options, context)

    def run() -> None:
        try:
            run_job(workspace.catalog, "restore", "cancel test", restore)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    with case.workspace() as workspace:
        worker = threading.Thread(target=run)
        worker.start()
        wait_until(ready, 60, what)
        contexts[0].cancel()
        worker.join(60)
        assert not worker.is_alive()
    return outcome


def test_sigkill_during_drop_existing_restore_leaves_the_original(pg, capsys):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before = pg.fingerprint()
    kill_restore_when(
        pg, lambda: bool(_pg_restore_sessions(pg)), "pg_restore to start loading", "1"
    )
    # pg_restore dies with its parent instead of loading on into the scratch database.
    wait_until(lambda: not _pg_restore_sessions(pg), 20, "orphaned pg_restore to go away")

    assert pg.fingerprint() == before
    assert not [n for n in pg.databases() if "_pre_restore_" in n]
    left_behind = [n for n in pg.databases() if n.startswith("jarvis_scratch_")]
    assert len(left_behind) == 1

    # The next restore clears what the killed one left and completes the swap.
    started = time.monotonic()
    assert pg.cli("restore", "postgres", "latest", "--drop-existing") == ExitCode.OK
    assert time.monotonic() - started < 60
    assert pg.fingerprint() == before
    assert not [n for n in pg.databases() if n.startswith("jarvis_scratch_")]
    assert list((pg.tmp_path / "repo" / ".postgres-restore").iterdir()) == []


def test_cancel_while_loading_stops_pg_restore_and_changes_nothing(pg):
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before, databases = pg.fingerprint(), pg.databases()
    outcome = cancel_restore_when(
        pg, lambda: bool(_pg_restore_sessions(pg)), "pg_restore to start loading", 1
    )
    assert [type(error) for error in outcome] == [JobCancelledError]
    wait_until(lambda: not _pg_restore_sessions(pg), 20, "pg_restore to go away")
    assert pg.fingerprint() == before
    assert pg.databases() == databases  # the scratch database was dropped
    assert "schema and data loaded" not in pg.job_log()


@pytest.fixture
def small_pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    postgres_server.execute(BIG_TABLE.replace("400000", "60000"), dbname=case.source)
    yield case
    case.cleanup()


def _blocked_comment_backends(case: PgCase) -> list[int]:
    return [
        row[0]
        for row in case.server.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'COMMENT ON DATABASE%%'"
        )
    ]


def _scratch_databases(case: PgCase) -> list[str]:
    return sorted(n for n in case.databases() if n.startswith("jarvis_scratch_"))


@pytest.mark.parametrize("kill_at", ["before its comment", "as it appears"])
def test_sigkill_right_after_create_database_leaves_nothing_the_next_restore_keeps(
    small_pg, kill_at
):
    """The scratch database is recognisable from the moment it exists: killed before its
    comment is written (held there by a lock on pg_shdescription) or as soon as it shows
    in pg_database, the next restore drops it."""
    pg = small_pg
    assert pg.cli("backup", "postgres") == ExitCode.OK
    before = pg.fingerprint()
    with psycopg.connect(pg.server.dsn("postgres")) as holder:
        if kill_at == "before its comment":
            holder.execute("LOCK TABLE pg_catalog.pg_shdescription IN SHARE MODE")
            ready, what = (lambda: bool(_blocked_comment_backends(pg))), "COMMENT to wait"
        else:
            ready, what = (lambda: bool(_scratch_databases(pg))), "the scratch database"
        kill_restore_when(pg, ready, what, "1")
        for pid in _blocked_comment_backends(pg):  # its session dies with the client
            pg.server.execute("SELECT pg_terminate_backend(%s)", (pid,))
        holder.rollback()
    wait_until(lambda: not _pg_restore_sessions(pg), 20, "orphaned pg_restore to go away")
    assert len(_scratch_databases(pg)) == 1
    assert pg.fingerprint() == before

    assert pg.cli("restore", "postgres", "latest", "--drop-existing") == ExitCode.OK
    assert _scratch_databases(pg) == []
    assert pg.fingerprint() == before
