"""The archiver watched (issue #16): pg_stat_archiver and the .ready files of a throwaway
cluster archiving through our wal-push; a failing archiver (its repository made
unwritable), lag beyond the limits and a gap in the archive, each alerted once to a real
webhook receiver and cleared with a recovery notice; health's PITR lines; the dashboard's
PITR card. Every age is judged at a moment the test passes in."""

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg

from engines.alerts import AlertDispatcher
from engines.catalog import Catalog
from engines.config import load_settings
from engines.monitoring.pitr_assessment import assess_pitr
from engines.monitoring.pitr_check import OFF, pitr_checks
from engines.monitoring.pitr_watch import FAILING, GAP, LAG, watch_pitr
from engines.monitoring.watchdog import run_watchdog
from engines.pitr.archiver_state import ArchiverState, read_archiver_state
from engines.pitr.archiver_verdict import LagLimits, judge_archiver
from tests.console_fixtures import fixed_disk, screen_words
from tests.test_pitr_archive import Archive, _switch, archive, archive_command  # noqa: F401
from tests.test_pitr_timeline import base_set  # noqa: F401

SLACK = "/services/T0/B0/pitr"


def _poll(condition: Callable[[], object], timeout: float = 90.0) -> None:
    """Real processes (the archiver retries on its own schedule): generous, never fixed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the archiver never reached the state the test waited for")
        time.sleep(0.2)


def _state(archive: Archive, user: str | None = None) -> ArchiverState:  # noqa: F811
    dsn = archive.pg.dsn() + (f" user={user}" if user else "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        return read_archiver_state(conn)


def _settings(archive: Archive, **extra: str):  # noqa: F811
    return load_settings(environ=extra, env_file=archive.env_file)


def _texts(receiver) -> list[str]:
    return [r.json()["text"] for r in receiver.requests if r.path == SLACK]


def test_the_state_comes_from_pg_stat_archiver_and_the_ready_files(archive: Archive) -> None:  # noqa: F811
    name = _switch(archive)
    _poll(lambda: _state(archive).last_archived_wal == name)
    state = _state(archive)
    system_id = archive.pg.execute("SELECT system_identifier FROM pg_control_system()")[0][0]
    assert (state.archive_mode, state.system_id, state.timeline) == ("on", system_id, 1)
    assert "wal-push" in state.archive_command and state.archived_count >= 2
    assert (state.ready_files, state.segments_behind, state.failing) == (0, 0, False)
    assert state.last_archived_time is not None
    now = state.last_archived_time + timedelta(seconds=12)
    verdict = judge_archiver(state, now, LagLimits(64, 300))
    assert verdict.healthy and verdict.since_archived_s == 12.0 and verdict.waited_s is None
    assert verdict.summary == f"last archived {name} 12 s ago; 0 WAL file(s) waiting"


def test_a_role_without_pg_monitor_sees_an_estimate_not_the_ready_files(
    archive: Archive,  # noqa: F811
) -> None:
    archive.pg.execute("DROP ROLE IF EXISTS watcher; CREATE ROLE watcher LOGIN")
    state = _state(archive, "watcher")
    assert (state.ready_files, state.oldest_ready_at, state.segments_behind) == (None, None, 0)
    assert state.archived_count >= 1  # pg_stat_archiver itself is anyone's to read
    summary = judge_archiver(state, state.last_archived_time, LagLimits(64, 300)).summary
    assert summary.endswith(
        "; about 0 WAL file(s) waiting (grant the role pg_monitor to count the .ready files)"
    )
    archive.pg.execute("GRANT pg_monitor TO watcher")
    assert _state(archive, "watcher").ready_files == 0


def test_a_failing_archiver_and_its_lag_alert_once_and_recover(
    archive: Archive,  # noqa: F811
    webhook_receiver,
) -> None:
    settings = _settings(
        archive,
        SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK),
        BACKUP_WAL_LAG_ALERT_SEGMENTS="3",
        BACKUP_MIN_FREE_PERCENT="0",
    )
    before = _state(archive)
    (timeline_folder,) = archive.repository.glob("wal/*/00000001")
    os.chmod(timeline_folder, 0o555)  # wal-push (PostgreSQL's account) cannot write there
    try:
        names = [_switch(archive) for _ in range(3)]
        _poll(lambda: _state(archive).failed_count > before.failed_count)
        failing = _state(archive)
        assert failing.failing and failing.ready_files == 3
        assert failing.last_failed_wal == names[0]
        assert failing.last_archived_wal == before.last_archived_wal
        now = failing.oldest_ready_at + timedelta(seconds=5)  # the count alerts, not the wait
        with Catalog.open(archive.root / "catalog.db") as catalog:
            dispatcher = AlertDispatcher(catalog, settings, clock=lambda: now)
            found = assess_pitr(settings, catalog, now)
            checks = {c.name: c for c in pitr_checks(found)}
            assert not checks["PITR archiver"].ok and not checks["PITR archive lag"].ok
            assert checks["PITR archiver"].detail.startswith(
                f"the archiver is failing: {names[0]} failed at "
            )
            assert "3 WAL file(s) wait to be archived" in checks["PITR archive lag"].detail
            problems = run_watchdog(settings, catalog, dispatcher, now)
            assert any(p.startswith(f"the archiver is failing: {names[0]}") for p in problems)
            kinds = {alert.kind for alert in catalog.open_conditions("pitr_")}
            assert kinds == {FAILING, LAG}
            texts = _texts(webhook_receiver)  # delivered before raise_condition returned
            failing_text = next(t for t in texts if FAILING in t)
            assert "CRITICAL" in failing_text and f"{names[0]} failed at" in failing_text
            assert f"last success {before.last_archived_wal} at" in failing_text
            lag_text = next(t for t in texts if LAG in t)
            assert (
                "3 WAL file(s) wait" in lag_text and "BACKUP_WAL_LAG_ALERT_SEGMENTS=3" in lag_text
            )

            watch_pitr(settings, catalog, dispatcher, now)  # the same incident: no new alert
            assert len(_texts(webhook_receiver)) == len(texts)

            later = failing.oldest_ready_at + timedelta(seconds=301)
            waited = judge_archiver(failing, later, LagLimits(1000, 300))
            assert "has waited 5 min (alert after BACKUP_WAL_LAG_ALERT_SECONDS=300)" in (
                waited.lagging
            )

            os.chmod(timeline_folder, 0o755)
            archive.pg.execute("SELECT pg_reload_conf()")  # wakes the archiver to retry
            _poll(lambda: _state(archive).last_archived_wal == names[-1])
            recovered = _state(archive)
            assert not recovered.failing and recovered.ready_files == 0
            assert watch_pitr(settings, catalog, dispatcher, now) == []
            assert list(catalog.open_conditions("pitr_")) == []
            resolved = _texts(webhook_receiver)[len(texts) :]
            assert len(resolved) == 2 and all("resolved" in text for text in resolved)
            assert any("PostgreSQL archives again" in t for t in resolved)
            assert any("the archive caught up" in t for t in resolved)
    finally:
        os.chmod(timeline_folder, 0o755)


def test_archiving_off_is_one_neutral_line_never_a_failure(archive: Archive) -> None:  # noqa: F811
    from dataclasses import replace

    from engines.monitoring.pitr_assessment import PitrAssessment

    off = replace(_state(archive), archive_mode="off")
    verdict = judge_archiver(off, off.last_archived_time, LagLimits(64, 300))
    (line,) = pitr_checks(PitrAssessment(verdict))
    assert (line.name, line.ok, line.detail, line.warning) == ("PITR", True, OFF, "")


def _segments(archive: Archive) -> dict[str, Path]:  # noqa: F811
    return {
        path.name.split(".")[0]: path
        for path in archive.repository.glob("wal/*/00000001/*.enc")
        if len(path.name.split(".")) == 3
    }


async def test_the_dashboard_shows_the_window_and_the_lag(
    archive: Archive,  # noqa: F811
    base_set: str,  # noqa: F811
    isolated_env,
) -> None:
    from jarvis_tui.app import make_app

    state = _state(archive)
    now = state.last_archived_time + timedelta(seconds=7)
    app = make_app(
        archive.env_file, clock=lambda: now, disk_space=fixed_disk, poll_seconds=None,
        host_scheduler=False,
    )  # fmt: skip
    (timeline_folder,) = archive.repository.glob("wal/*/00000001")
    async with app.run_test(size=(120, 60)) as pilot:
        await _settle(pilot)
        words = screen_words(app)
        assert "Point-in-time recovery ✓ archiving" in words
        assert "Window timeline 1: from " in words
        assert f"last archived {state.last_archived_wal} 7 s ago; 0 WAL file(s) waiting" in words
        os.chmod(timeline_folder, 0o555)
        try:
            name = _switch(archive)
            _poll(lambda: _state(archive).failing)
            await pilot.press("f5")
            await _settle(pilot)
            words = screen_words(app)
        finally:
            os.chmod(timeline_folder, 0o755)
            archive.pg.execute("SELECT pg_reload_conf()")
        assert "Point-in-time recovery ✗ FAILING" in words
        assert f"the archiver is failing: {name} failed at " in words
        _poll(lambda: _state(archive).last_archived_wal == name)


async def _settle(pilot) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_a_gap_alerts_once_fails_health_and_clears_when_refilled(
    archive: Archive,  # noqa: F811
    base_set: str,  # noqa: F811
    webhook_receiver,
) -> None:
    settings = _settings(archive, SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK))
    names = sorted(_segments(archive))
    missing = names[-2]  # switched after the base backup ended
    stored = _segments(archive)[missing]
    aside = stored.with_name("aside")
    stored.rename(aside)
    try:
        now = _state(archive).last_archived_time
        with Catalog.open(archive.root / "catalog.db") as catalog:
            dispatcher = AlertDispatcher(catalog, settings, clock=lambda: now)
            found = assess_pitr(settings, catalog, now)
            checks = {c.name: c for c in pitr_checks(found)}
            assert checks["PITR window"].ok and checks["PITR window"].detail.startswith(
                "restorable timeline 1: from "
            )
            assert not checks["PITR gaps"].ok
            assert f"1 WAL segment(s) missing from the archive ({missing})" in (
                checks["PITR gaps"].detail
            )
            problems = watch_pitr(settings, catalog, dispatcher, now)
            assert len(problems) == 1 and missing in problems[0]
            (text,) = [t for t in _texts(webhook_receiver) if GAP in t]
            assert "CRITICAL" in text and missing in text
            watch_pitr(settings, catalog, dispatcher, now)
            assert len(_texts(webhook_receiver)) == 1
            aside.rename(stored)
            assert watch_pitr(settings, catalog, dispatcher, now) == []
            (resolved,) = _texts(webhook_receiver)[1:]
            assert "resolved" in resolved and "no segment missing" in resolved
            assert {c.name: c.ok for c in pitr_checks(assess_pitr(settings, catalog, now))} == {
                "PITR archiver": True, "PITR archive lag": True, "PITR window": True,
                "PITR gaps": True,
            }  # fmt: skip
    finally:
        if aside.exists():
            aside.rename(stored)


def test_health_lists_the_pitr_lines(archive: Archive, base_set: str) -> None:  # noqa: F811
    import json

    result = archive.cli("health", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["PITR archiver"]["ok"] and checks["PITR gaps"]["ok"]
    assert checks["PITR archiver"]["detail"].startswith("the last attempt succeeded (")
    assert checks["PITR archiver"]["detail"].endswith("retried)") == (
        _state(archive).failed_count > 0
    )
    assert checks["PITR window"]["detail"].startswith("restorable timeline 1: from ")
    assert "WAL file(s) waiting" in checks["PITR archive lag"]["detail"]


def test_the_window_is_read_again_only_when_the_archive_changed(
    archive: Archive,  # noqa: F811
    base_set: str,  # noqa: F811
) -> None:
    from engines.monitoring.pitr_assessment import CachedTimeline

    settings = _settings(archive)
    windows = CachedTimeline()
    with Catalog.open(archive.root / "catalog.db") as catalog:
        started = time.perf_counter()
        first = windows(settings, catalog)
        read = time.perf_counter() - started
        started = time.perf_counter()
        assert windows(settings, catalog) is first  # nothing changed: the same report
        cached = time.perf_counter() - started
        print(f"window read {read * 1000:.1f} ms, from the cache {cached * 1000:.1f} ms")
        name = _switch(archive)
        _poll(lambda: _state(archive).last_archived_wal == name)
        (again,) = windows(settings, catalog).windows
        assert again.ranges[-1].latest_segment == name


def test_a_server_not_archiving_is_one_neutral_line_and_no_alert(
    tmp_path: Path, isolated_env, webhook_receiver
) -> None:
    from engines.monitoring.pitr_check import check_pitr
    from tests.scheduling_support import make_settings
    from tests.support.postgres import PostgresServer

    with PostgresServer(settings={"archive_mode": "off"}) as pg:
        settings = make_settings(
            tmp_path, DATABASE_URL=pg.url(), SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK)
        )
        now = pg.execute("SELECT now()")[0][0]
        with Catalog.open(settings.catalog_path) as catalog:
            (line,) = check_pitr(settings, catalog, now)
            assert (line.name, line.ok, line.detail, line.warning) == ("PITR", True, OFF, "")
            dispatcher = AlertDispatcher(catalog, settings, clock=lambda: now)
            assert watch_pitr(settings, catalog, dispatcher, now) == []
            assert list(catalog.open_conditions("pitr_")) == []
    assert _texts(webhook_receiver) == []


def test_a_damaged_archived_segment_fails_the_window_line_in_words(
    archive: Archive,  # noqa: F811
    base_set: str,  # noqa: F811
    webhook_receiver,
) -> None:
    settings = _settings(archive, SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK))
    first = _segments(archive)[min(_segments(archive))]  # the one whose header is read
    original = first.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    first.write_bytes(bytes(damaged))
    try:
        now = _state(archive).last_archived_time
        with Catalog.open(archive.root / "catalog.db") as catalog:
            found = assess_pitr(settings, catalog, now)
            checks = {c.name: c for c in pitr_checks(found)}
            window = checks["PITR window"]
            assert not window.ok and window.detail.startswith("cannot read the archive: ")
            assert "Traceback" not in window.detail and "\n" not in window.detail
            assert checks["PITR archiver"].ok  # the archiver is still judged
            dispatcher = AlertDispatcher(catalog, settings, clock=lambda: now)
            assert watch_pitr(settings, catalog, dispatcher, now) == []  # gaps unknown: kept
    finally:
        first.write_bytes(original)


def test_a_standby_is_judged_only_when_it_archives_itself(archive: Archive) -> None:  # noqa: F811
    from dataclasses import replace

    from engines.monitoring.pitr_assessment import PitrAssessment
    from engines.monitoring.pitr_check import STANDBY

    state = _state(archive)
    limits = LagLimits(64, 300)
    standby = replace(state, in_recovery=True, segments_behind=None)
    (line,) = pitr_checks(PitrAssessment(judge_archiver(standby, state.last_archived_time, limits)))
    assert (line.name, line.ok, line.detail) == ("PITR", True, STANDBY)
    always = replace(standby, archive_mode="always")
    names = [
        c.name
        for c in pitr_checks(
            PitrAssessment(judge_archiver(always, now=state.last_archived_time, limits=limits))
        )
    ]
    assert names[:2] == ["PITR archiver", "PITR archive lag"]


def test_archiving_through_another_command_is_judged_but_has_no_window_here(
    archive: Archive,  # noqa: F811
) -> None:
    from engines.monitoring.pitr_assessment import ELSEWHERE

    settings = _settings(archive)
    archive.pg.execute("ALTER SYSTEM SET archive_command = '/bin/true'")
    archive.pg.execute("SELECT pg_reload_conf()")
    try:
        _poll(lambda: _state(archive).archive_command == "/bin/true")
        now = _state(archive).last_archived_time
        with Catalog.open(archive.root / "catalog.db") as catalog:
            checks = {c.name: c for c in pitr_checks(assess_pitr(settings, catalog, now))}
    finally:
        command = archive_command(archive.pg, archive.env_file)
        archive.pg.execute(f"ALTER SYSTEM SET archive_command = {command}")
        archive.pg.execute("SELECT pg_reload_conf()")
    assert list(checks) == ["PITR archiver", "PITR archive lag", "PITR window"]
    assert checks["PITR window"].ok and checks["PITR window"].detail == ELSEWHERE
    assert not checks["PITR window"].warning
    _poll(lambda: "wal-push" in _state(archive).archive_command)
