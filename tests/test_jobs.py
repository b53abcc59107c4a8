"""Jobs end to end: real catalog files, real processes, real signals, real log files."""

import logging
import multiprocessing
import os
import secrets
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from engines.catalog import ORPHAN_ERROR, Catalog
from engines.errors import JobCancelledError, RepositoryLockedError
from engines.joblog import (
    LOG_FILE_NAME,
    close_logging,
    configure_logging,
    register_secrets,
)
from engines.jobs import (
    CANCEL_POLL_INTERVAL_S,
    PROGRESS_INTERVAL_S,
    JobContext,
    JobFinished,
    JobLogged,
    JobProgressed,
    JobStarted,
    run_job,
)

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite3"


@pytest.fixture
def catalog(catalog_path: Path):
    with Catalog.open(catalog_path) as opened:
        yield opened


@pytest.fixture
def log_dir(tmp_path: Path):
    yield tmp_path / "logs"
    close_logging()


class FakeClock:
    """A monotonic clock the test moves by hand, to test throttling exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# --- outcomes --------------------------------------------------------------------------------


def test_a_successful_job_records_its_log_progress_and_result(catalog: Catalog):
    updates = []

    def work(ctx: JobContext) -> str:
        ctx.log("dumping postgres")
        ctx.progress(50, 100)
        ctx.progress(100, 100)
        return "dump.sql.gz.enc"

    result = run_job(catalog, "backup", "postgres backup", work, listeners=[updates.append])

    assert result == "dump.sql.gz.enc"
    (job,) = catalog.list_jobs()
    assert (job.kind, job.description, job.status, job.error) == (
        "backup",
        "postgres backup",
        "succeeded",
        None,
    )
    assert (job.progress_done, job.progress_total, job.progress_unit) == (100, 100, "bytes")
    assert job.finished_at is not None and job.pid == os.getpid()
    messages = [e.message for e in catalog.job_events(job.id)]
    assert messages[0] == "started backup: postgres backup"
    assert messages[1] == "dumping postgres"
    assert messages[-1].startswith("succeeded in ")

    assert updates[0] == JobStarted(job.id, "backup", "postgres backup")
    assert JobProgressed(job.id, 100, 100, "bytes") in updates
    assert [u.message for u in updates if isinstance(u, JobLogged)] == messages
    assert isinstance(updates[-1], JobFinished) and updates[-1].status == "succeeded"


def test_an_engine_error_fails_the_job_with_its_message(catalog: Catalog):
    def work(ctx: JobContext) -> None:
        raise RepositoryLockedError("the repository is locked by pid 4242 on db-1")

    with pytest.raises(RepositoryLockedError):
        run_job(catalog, "backup", "full", work)
    (job,) = catalog.list_jobs()
    assert (job.status, job.error) == ("failed", "the repository is locked by pid 4242 on db-1")
    last = catalog.job_events(job.id)[-1]
    assert last.level == "error" and "locked by pid 4242" in last.message
    assert not [e for e in catalog.job_events(job.id) if e.level == "debug"]


def test_an_unexpected_error_gets_a_short_message_and_its_traceback_in_a_debug_event(
    catalog: Catalog,
):
    def work(ctx: JobContext) -> None:
        {}["missing"]

    with pytest.raises(KeyError):
        run_job(catalog, "verify", "latest", work)
    (job,) = catalog.list_jobs()
    assert job.status == "failed"
    assert job.error.startswith("unexpected error: KeyError: 'missing'")
    (debug,) = [e for e in catalog.job_events(job.id) if e.level == "debug"]
    assert debug.message.startswith("Traceback (most recent call last):")
    assert 'work\n    {}["missing"]' in debug.message


def test_an_interrupt_does_not_leave_the_job_running(catalog: Catalog):
    def work(ctx: JobContext) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(catalog, "backup", "full", work)
    (job,) = catalog.list_jobs()
    assert (job.status, job.error) == ("cancelled", "interrupted (KeyboardInterrupt)")


def test_a_failing_listener_does_not_break_the_job(catalog: Catalog):
    def broken_listener(update) -> None:
        raise RuntimeError("console went away")

    assert run_job(catalog, "backup", "x", lambda ctx: 7, listeners=[broken_listener]) == 7
    assert catalog.list_jobs()[0].status == "succeeded"


# --- cancellation ----------------------------------------------------------------------------


def test_cancel_in_process_from_another_thread(catalog: Catalog):
    contexts: list[JobContext] = []

    def work(ctx: JobContext) -> None:
        contexts.append(ctx)
        while True:
            ctx.raise_if_cancelled()
            time.sleep(0.005)

    threading.Timer(0.1, lambda: contexts[0].cancel()).start()
    with pytest.raises(JobCancelledError):
        run_job(catalog, "backup", "full", work)
    (job,) = catalog.list_jobs()
    assert (job.status, job.error) == ("cancelled", "cancelled by request")
    assert contexts[0].cancel_event.is_set()


def _cancel_from_another_process(path: str, job_id: int) -> None:
    with Catalog.open(Path(path)) as catalog:
        catalog.request_job_cancel(job_id)


def test_cancel_requested_from_another_process_stops_the_job(catalog: Catalog, catalog_path):
    checks = 0

    def work(ctx: JobContext) -> None:
        nonlocal checks
        canceller = SPAWN.Process(
            target=_cancel_from_another_process, args=(str(catalog_path), ctx.job_id)
        )
        canceller.start()
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                checks += 1
                ctx.raise_if_cancelled()
                time.sleep(0.002)
        finally:
            canceller.join()
        raise AssertionError("the job never saw the cancel request")

    started = time.monotonic()
    with pytest.raises(JobCancelledError):
        run_job(catalog, "backup", "full", work)
    (job,) = catalog.list_jobs()
    assert (job.status, job.cancel_requested) == ("cancelled", True)
    assert catalog.job_events(job.id)[-1].level == "warning"
    # Most checks are answered by the in-process event, not by a catalog query.
    polls_at_most = (time.monotonic() - started) / CANCEL_POLL_INTERVAL_S + 1
    assert checks > 2 * polls_at_most


# --- orphaned jobs ---------------------------------------------------------------------------


def _run_a_job_until_killed(path: str, job_ids) -> None:
    def work(ctx: JobContext) -> None:
        backup_set = ctx.catalog.create_backup_set("postgres", job_id=ctx.job_id)
        ctx.catalog.add_artifact(backup_set.id, "postgres", "full", "postgres/x.dump.gz.enc")
        job_ids.put((ctx.job_id, backup_set.id))
        while True:
            ctx.progress(1, 10, "files")
            time.sleep(0.05)

    with Catalog.open(Path(path)) as catalog:
        run_job(catalog, "backup", "killed mid-way", work)


def test_a_job_whose_process_was_killed_is_marked_failed(catalog: Catalog, catalog_path):
    job_ids = SPAWN.Queue()
    child = SPAWN.Process(target=_run_a_job_until_killed, args=(str(catalog_path), job_ids))
    child.start()
    killed_job, its_set = job_ids.get(timeout=30)
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=10)
    assert child.exitcode == -signal.SIGKILL
    assert catalog.get_job(killed_job).status == "running"

    alive_job = catalog.create_job("verify", "still running here")
    assert catalog.mark_orphaned_jobs() == [killed_job]
    assert catalog.mark_orphaned_jobs() == []

    dead = catalog.get_job(killed_job)
    assert (dead.status, dead.error) == ("failed", ORPHAN_ERROR)
    assert dead.finished_at is not None
    assert catalog.job_events(killed_job)[-1].level == "error"
    assert catalog.get_job(alive_job.id).status == "running"
    assert catalog.get_backup_set(its_set).status == "failed"
    assert [a.status for a in catalog.artifacts_of(its_set)] == ["failed"]


# --- progress throttling ---------------------------------------------------------------------


def test_progress_is_throttled_but_completion_and_the_last_value_are_stored(catalog: Catalog):
    job = catalog.create_job("backup", "throttle")
    clock = FakeClock()
    seen: list[JobProgressed] = []
    ctx = JobContext(catalog, job.id, clock=clock, listeners=[seen.append])

    def stored() -> int:
        return catalog.get_job(job.id).progress_done

    ctx.progress(10, 1000)
    assert stored() == 10
    ctx.progress(20)
    assert stored() == 10
    clock.now += PROGRESS_INTERVAL_S
    ctx.progress(30)
    assert stored() == 30
    ctx.progress(1000)
    assert stored() == 1000
    assert [u.done for u in seen] == [10, 30, 1000]

    ctx.progress(5, 7, "files")
    ctx.progress(6, unit="files")
    assert stored() == 1000
    ctx.flush_progress()
    again = catalog.get_job(job.id)
    assert (again.progress_done, again.progress_total, again.progress_unit) == (6, 7, "files")


def test_a_job_counted_in_parts_leaves_out_the_bytes_each_part_reports(catalog: Catalog):
    """`backup full` read bytes one moment and parts the next; now one unit per job."""
    seen: list[JobProgressed] = []

    def work(ctx: JobContext) -> None:
        ctx.count_in("parts", 2)
        for part in (1, 2):
            ctx.progress(4096, 8192)  # a source's own bytes
            ctx.progress(part, 2, "parts")
        ctx.progress(10, unit="keys")

    run_job(catalog, "backup", "full", work, listeners=[seen.append])
    (job,) = catalog.list_jobs()
    assert (job.progress_done, job.progress_total, job.progress_unit) == (2, 2, "parts")
    progressed = [(u.done, u.total, u.unit) for u in seen if isinstance(u, JobProgressed)]
    # Every count, none held back by the throttle: the next part may be long and silent.
    assert progressed == [(0, 2, "parts"), (1, 2, "parts"), (2, 2, "parts")]


def test_a_job_reporting_progress_in_a_tight_loop_ends_with_its_final_value(catalog: Catalog):
    seen = []

    def work(ctx: JobContext) -> None:
        for done in range(1, 20_001):
            ctx.progress(done)

    run_job(catalog, "backup", "files", work, listeners=[seen.append])
    (job,) = catalog.list_jobs()
    assert (job.progress_done, job.progress_total) == (20_000, None)
    progressed = [u for u in seen if isinstance(u, JobProgressed)]
    assert progressed[-1].done == 20_000
    assert len(progressed) < 100


# --- logging ---------------------------------------------------------------------------------


def test_the_log_file_is_private_utc_and_free_of_registered_secrets(
    catalog: Catalog, log_dir: Path
):
    secret = "key-" + secrets.token_hex(16)
    register_secrets([secret])
    configure_logging(log_dir)
    configure_logging(log_dir)  # a second call must not double every line

    def work(ctx: JobContext) -> None:
        ctx.log(f"using BACKUP_ENCRYPTION_KEY={secret}")
        logging.getLogger("jarvis.sources").warning("token %s rejected", secret)
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logging.getLogger("jarvis").exception("while sealing")

    run_job(catalog, "backup", "secrets", work)
    close_logging()

    log_file = log_dir / LOG_FILE_NAME
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    text = log_file.read_text()
    assert secret not in text
    assert text.count("using BACKUP_ENCRYPTION_KEY=****") == 1
    assert "token **** rejected" in text
    assert "ValueError: bad key ****" in text
    first_line = text.splitlines()[0]
    assert first_line[:4].isdigit() and first_line[23] == "Z"
    assert "[job " in first_line and "started backup: secrets" in first_line


def test_rotated_log_files_stay_private(log_dir: Path):
    logger = configure_logging(log_dir, max_bytes=2_000, backups=2)
    for n in range(200):
        logger.info("line %d of a long run", n)
    close_logging()
    files = sorted(log_dir.iterdir())
    assert [f.name for f in files] == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def _set_job_process(catalog: Catalog, job_id: int, pid: int, started_at: str) -> None:
    with catalog._db.write() as conn:
        conn.execute(
            "UPDATE jobs SET pid = ?, started_at = ? WHERE id = ?", (pid, started_at, job_id)
        )


def test_a_job_whose_pid_now_names_a_later_process_is_orphaned(catalog: Catalog):
    """After a reboot (or a long while) a dead job's pid can name another process: the
    job's row was written once its process ran, so a process started later is not it."""
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        reused = catalog.create_job("backup", "backup files")
        _set_job_process(catalog, reused.id, other.pid, "2020-01-01T00:00:00+00:00")
        own = catalog.create_job("backup", "backup redis")  # this process, started earlier
        assert catalog.mark_orphaned_jobs() == [reused.id]
        assert catalog.get_job(reused.id).status == "failed"
        assert catalog.get_job(own.id).status == "running"
        assert catalog.get_job(reused.id).gone_here() is True
        assert catalog.get_job(own.id).gone_here() is False
    finally:
        other.kill()
        other.wait()
