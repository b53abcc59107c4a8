"""`GET /metrics` reads PostgreSQL's WAL archiver from a real cluster archiving through our
wal-push (the archive fixture of test_pitr_archive): in step with pg_stat_archiver while it
archives, then failing and lagging while wal-push cannot write, until it recovers."""

import os

from tests.support.api_server import TOKEN, ApiServer
from tests.test_api_metrics import scrape, value
from tests.test_pitr_archive import Archive, _switch, archive, archive_command  # noqa: F401
from tests.test_pitr_archiver import _poll, _state


def test_the_archivers_state_is_scraped_and_follows_a_failure(archive: Archive) -> None:  # noqa: F811
    env_file = archive.root / "api.env"
    env_file.write_text(
        archive.env_file.read_text()
        + f"JARVIS_API_TOKEN={TOKEN}\nBACKUP_WAL_LAG_ALERT_SEGMENTS=3\n"
    )
    name = _switch(archive)
    _poll(lambda: _state(archive).last_archived_wal == name)
    (timeline_folder,) = archive.repository.glob("wal/*/00000001")
    with ApiServer(env_file) as server, server.client() as client:
        before = _state(archive)
        samples, _ = scrape(client)
        after = _state(archive)
        assert value(samples, "pitr_watched") == value(samples, "pitr_up") == 1
        assert value(samples, "pitr_archiving") == 1
        assert (
            value(samples, "pitr_archiver_failing") == value(samples, "pitr_archive_lagging") == 0
        )
        archived = value(samples, "pitr_archived_total")
        assert before.archived_count <= archived <= after.archived_count
        assert before.last_archived_time is not None and after.last_archived_time is not None
        last = value(samples, "pitr_last_archived_timestamp_seconds")
        assert before.last_archived_time.timestamp() <= last
        assert last <= after.last_archived_time.timestamp()
        assert value(samples, "pitr_wal_waiting_files") == 0 == after.ready_files

        os.chmod(timeline_folder, 0o555)  # wal-push (PostgreSQL's account) cannot write there
        try:
            names = [_switch(archive) for _ in range(3)]
            _poll(lambda: _state(archive).failed_count > after.failed_count)
            failing = _state(archive)
            samples, _ = scrape(client)
            assert failing.failing and failing.last_failed_wal == names[0]
            assert value(samples, "pitr_up") == value(samples, "pitr_archiver_failing") == 1
            assert value(samples, "pitr_archive_lagging") == 1  # 3 files wait, alert from 3
            assert value(samples, "pitr_wal_waiting_files") >= 3
            assert value(samples, "pitr_archive_failures_total") >= failing.failed_count
            assert value(samples, "pitr_oldest_wal_waiting_seconds") > 0
            last_archived = value(samples, "pitr_last_archived_timestamp_seconds")
            assert last_archived == failing.last_archived_time.timestamp()
        finally:
            os.chmod(timeline_folder, 0o755)
        archive.pg.execute("SELECT pg_reload_conf()")  # wakes the archiver to retry
        _poll(lambda: _state(archive).last_archived_wal == names[-1])
        samples, _ = scrape(client)
        assert value(samples, "pitr_archiver_failing") == 0
        assert value(samples, "pitr_wal_waiting_files") < 3  # the three were archived
