"""The scheduler with an injected clock: a year of runs, downtime, skips, coalescing."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.catalog import Catalog
from engines.scheduling.cron import CronTimes, cron_trigger, describe_cron
from engines.scheduling.retention import Candidate, RetentionPolicy, plan_retention
from engines.scheduling.scheduler import Scheduler
from engines.scheduling.schedules import SCHEDULER_LOCK_NAME, scheduler_holder, schedules_from
from engines.workspace import Workspace
from tests.scheduling_support import T0, Clock, make_settings, quick_verbs
from tests.test_retention import reference_kept


def next_event(scheduler: Scheduler, now: datetime) -> datetime:
    return min(t for s in scheduler.schedules if (t := s.next_after(now)) is not None)


def runs(catalog: Catalog, name: str) -> list:
    return list(reversed(catalog.list_schedule_runs(name, limit=10_000)))


@pytest.mark.parametrize(
    ("cron", "words", "weekday"),
    [
        ("0 3 * * 0", "every Sunday at 03:00", "Sunday"),
        ("0 3 * * 7", "every Sunday at 03:00", "Sunday"),
        ("30 1 * * 1-5", "every weekday at 01:30", "Wednesday"),
        ("0 4 1 * *", "on the 1st of every month at 04:00", "Wednesday"),
        ("0 2 * * *", "every day at 02:00", "Wednesday"),
        ("15 6 * * sat", "every Saturday at 06:15", "Saturday"),
    ],
)
def test_cron_weekdays_count_from_sunday_as_in_cron(cron, words, weekday):
    first = cron_trigger(cron, UTC).get_next_fire_time(None, T0)  # T0 is Wednesday 2025-01-01
    assert first.strftime("%A") == weekday
    assert describe_cron(cron) == words


def test_schedules_follow_the_configured_time_zone(tmp_path, isolated_env):
    settings = make_settings(tmp_path, BACKUP_TIMEZONE="Europe/Berlin")
    daily = schedules_from(settings)[0]
    assert daily.next_after(T0) == datetime(2025, 1, 1, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    # Across the spring change the wall-clock time stays 02:00 where it exists.
    march = daily.next_after(datetime(2025, 3, 30, 0, 0, tzinfo=UTC)).astimezone(daily.times.zone)
    assert march.utcoffset() == timedelta(hours=2) and march.hour == 3 and march.day == 30
    april = daily.next_after(march).astimezone(daily.times.zone)
    assert april.utcoffset() == timedelta(hours=2) and april.hour == 2 and april.day == 31


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Los_Angeles"])
@pytest.mark.parametrize("cron", ["0 0 * * *", "30 1 * * *", "30 2 * * *", "0 3 * * *"])
def test_daylight_saving_changes_neither_skip_nor_repeat_a_daily_run(zone, cron):
    tz = ZoneInfo(zone)
    times = CronTimes(cron, tz)
    moment, days = times.next_after(datetime(2024, 12, 31, 12, 0, tzinfo=UTC)), []
    while moment.astimezone(tz).year == 2025:
        days.append(moment.astimezone(tz).date())
        following = times.next_after(moment)
        assert following > moment
        moment = following
    assert len(days) == len(set(days)) == 365
    hour, minute = int(cron.split()[1]), int(cron.split()[0])
    spring = next(d for d in days if d.month == 3 and d.day in (9, 30))
    for day in (spring, spring + timedelta(days=1)):
        local = times.next_after(
            datetime.combine(day, datetime.min.time(), tz) - timedelta(hours=1)
        )
        # A wall-clock time inside the skipped hour runs just after the jump.
        assert (
            local.astimezone(tz).hour in (hour, hour + 1) and local.astimezone(tz).minute == minute
        )


def test_a_simulated_year_leaves_exactly_the_expected_sets(tmp_path, isolated_env):
    settings = make_settings(tmp_path, BACKUP_VERIFY_RESTORE_ENABLED="false")
    clock = Clock(T0)
    scheduler = Scheduler(settings, clock=clock, run_verb=quick_verbs)
    assert scheduler.start(timers=False)
    policy = RetentionPolicy(7, 4, 12)
    expected: list[datetime] = []
    end = T0 + timedelta(days=365)
    try:
        while (moment := next_event(scheduler, clock())) < end:
            clock.set(moment)
            done = scheduler.tick()
            for run in done:
                if run.schedule.spec.action == "backup":
                    expected.append(moment)
                elif run.schedule.spec.action == "cleanup":
                    expected = sorted(reference_kept(expected, policy, UTC))
            assert len({r.schedule.spec.action for r in done}) == len(done)
        catalog = scheduler.workspace.catalog
        sets = catalog.list_backup_sets()
        assert sorted(s.created_at for s in sets) == expected
        assert all(s.status == "complete" for s in sets)
        # Every run happened, none was skipped or missed.
        assert len(runs(catalog, "daily")) == 365
        assert len(runs(catalog, "weekly")) == 52
        assert len(runs(catalog, "monthly")) == 12
        assert len(runs(catalog, "cleanup")) == 52
        outcomes = {
            r.outcome for name in ("daily", "weekly", "cleanup") for r in runs(catalog, name)
        }
        assert outcomes == {"succeeded"}
        # What is left: the last 7 days, 4 weeks and 12 months, files included.
        # The newest of each of the last 12 months (Aug 31 and Nov 30 are Sundays, when the
        # weekly set at 03:00 is the newest), of the last 4 ISO weeks, of the last 7 days,
        # and the three nights after the last cleanup on Sunday the 28th.
        assert [f"{m:%m-%d %H}" for m in expected] == [
            *("01-31 02", "02-28 02", "03-31 02", "04-30 02", "05-31 02", "06-30 02"),
            *("07-31 02", "08-31 03", "09-30 02", "10-31 02", "11-30 03"),
            *("12-07 03", "12-14 03", "12-21 03"),
            *("12-22 02", "12-23 02", "12-24 02", "12-25 02", "12-26 02", "12-27 02", "12-28 03"),
            *("12-29 02", "12-30 02", "12-31 02"),
        ]
        stored = {obj.key for obj in scheduler.workspace.repository.list("postgres/")}
        assert len(stored) == 2 * len(sets)
        assert sets[0].created_at == datetime(2025, 12, 31, 2, 0, tzinfo=UTC)
    finally:
        scheduler.stop(0)


@settings(max_examples=60, deadline=None)
@given(
    daily=st.integers(0, 10),
    weekly=st.integers(0, 6),
    monthly=st.integers(0, 14),
    backup_hour=st.integers(0, 23),
    cleanup_weekday=st.integers(0, 6),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles"]),
)
def test_a_year_of_runs_and_cleanups_matches_the_reference_model(
    daily, weekly, monthly, backup_hour, cleanup_weekday, zone
):
    """The schedules' fire times and repeated retention, for any policy and schedule."""
    tz = ZoneInfo(zone)
    backups = CronTimes(f"0 {backup_hour} * * *", tz)
    cleanups = CronTimes(f"30 {backup_hour} * * {cleanup_weekday}", tz)
    policy = RetentionPolicy(daily, weekly, monthly)
    events = []
    for times, what in ((backups, "backup"), (cleanups, "cleanup")):
        moment = times.next_after(T0)
        while moment < T0 + timedelta(days=365):
            events.append((moment, what))
            moment = times.next_after(moment)
    existing: list[datetime] = []
    model: list[datetime] = []
    for moment, what in sorted(events):
        if what == "backup":
            existing.append(moment)
            model.append(moment)
            continue
        candidates = [
            Candidate(m.isoformat(), "full", "complete", m, frozenset({"db"})) for m in existing
        ]
        existing = sorted(
            d.candidate.created_at for d in plan_retention(candidates, policy, tz) if d.keep
        )
        model = sorted(reference_kept(model, policy, tz) | set(model[-1:]))  # newest is kept
    assert existing == model


def test_missed_runs_coalesce_into_one_run_within_the_grace_time(tmp_path, isolated_env):
    settings = make_settings(
        tmp_path,
        BACKUP_WEEKLY_ENABLED="false",
        BACKUP_MONTHLY_ENABLED="false",
        BACKUP_CLEANUP_ENABLED="false",
        BACKUP_VERIFY_RESTORE_ENABLED="false",
        BACKUP_MISFIRE_GRACE_MINUTES="120",
    )
    clock = Clock(T0)
    first = Scheduler(settings, clock=clock, run_verb=quick_verbs)
    assert first.start(timers=False)
    clock.set(T0 + timedelta(hours=2))
    assert len(first.tick()) == 1
    first.stop(0)

    # Down for three nights; back at 03:30 on the 4th, 90 minutes after that night's run.
    clock.set(datetime(2025, 1, 4, 3, 30, tzinfo=UTC))
    second = Scheduler(settings, clock=clock, run_verb=quick_verbs)
    assert second.start(timers=False)
    try:
        done = second.tick()
        assert [r.planned_at for r in done] == [datetime(2025, 1, 4, 2, 0, tzinfo=UTC)]
        catalog = second.workspace.catalog
        history = [(r.planned_at.day, r.outcome) for r in runs(catalog, "daily")]
        assert history == [(1, "succeeded"), (2, "missed"), (3, "missed"), (4, "succeeded")]
        missed = runs(catalog, "daily")[1]
        assert "coalesced into the run planned at 2025-01-04 02:00" in missed.detail
        assert catalog.list_backup_sets()[0].created_at == clock()
        assert second.tick() == []  # nothing is due twice

        # Back only at 05:00 the next day: three hours late, past the grace time.
        clock.set(datetime(2025, 1, 5, 5, 0, tzinfo=UTC))
        assert second.tick() == []
        late = runs(catalog, "daily")[-1]
        assert late.outcome == "missed" and "BACKUP_MISFIRE_GRACE_MINUTES=120" in late.detail
        assert len(catalog.list_backup_sets()) == 2
    finally:
        second.stop(0)


def test_backups_due_together_make_one_set_with_the_highest_tier(tmp_path, isolated_env):
    settings = make_settings(
        tmp_path,
        BACKUP_WEEKLY_TIME="0 2 * * 0",
        BACKUP_MONTHLY_TIME="0 2 1 * *",
        BACKUP_CLEANUP_ENABLED="false",
        BACKUP_VERIFY_RESTORE_ENABLED="false",
    )
    clock = Clock(datetime(2025, 5, 31, 12, 0, tzinfo=UTC))  # Saturday before Sunday June 1st
    scheduler = Scheduler(settings, clock=clock, run_verb=quick_verbs)
    assert scheduler.start(timers=False)
    try:
        clock.set(datetime(2025, 6, 1, 2, 0, tzinfo=UTC))
        assert sorted(r.schedule.name for r in scheduler.tick()) == ["daily", "monthly", "weekly"]
        catalog = scheduler.workspace.catalog
        [only] = catalog.list_backup_sets()
        assert only.tier == "monthly"
        latest = {name: runs(catalog, name)[-1] for name in ("daily", "weekly", "monthly")}
        assert {r.outcome for r in latest.values()} == {"succeeded"}
        assert len({r.job_id for r in latest.values()}) == 1
        assert latest["daily"].detail == "covered by the monthly backup"
    finally:
        scheduler.stop(0)


def test_a_run_finding_the_previous_job_running_is_skipped_and_alerted(tmp_path, isolated_env):
    settings = make_settings(
        tmp_path,
        BACKUP_DAILY_TIME="0 * * * *",  # hourly, to pile up behind a slow job
        BACKUP_WEEKLY_ENABLED="false",
        BACKUP_MONTHLY_ENABLED="false",
        BACKUP_CLEANUP_ENABLED="false",
        BACKUP_VERIFY_RESTORE_ENABLED="false",
        BACKUP_SKIP_ALERT_AFTER="2",
    )
    release, started = threading.Event(), threading.Event()

    def slow_backup(verb, workspace, request, context) -> str:
        if not release.is_set():
            started.set()
            assert release.wait(30)
        return quick_verbs(verb, workspace, request, context)

    clock = Clock(T0)
    scheduler = Scheduler(settings, clock=clock, run_verb=slow_backup)
    assert scheduler.start(timers=False)
    try:
        clock.set(T0 + timedelta(hours=1))
        worker = threading.Thread(target=scheduler.tick)
        worker.start()
        assert started.wait(10)
        catalog = scheduler.workspace.catalog
        for hour in (2, 3):
            clock.set(T0 + timedelta(hours=hour))
            scheduler.tick()
        history = [(r.planned_at.hour, r.outcome) for r in runs(catalog, "daily")]
        assert history == [(1, "running"), (2, "skipped"), (3, "skipped")]
        assert (
            "scheduled daily backup (full) was still running" in runs(catalog, "daily")[-1].detail
        )
        [alert] = catalog.open_conditions("schedule_skipped:")
        assert alert.kind == "schedule_skipped:daily" and "2 times in a row" in alert.message

        release.set()
        worker.join(10)
        clock.set(T0 + timedelta(hours=4))
        scheduler.tick()
        assert [r.outcome for r in runs(catalog, "daily")][-1] == "succeeded"
        assert catalog.open_conditions("schedule_skipped:") == []
        assert catalog.list_alerts()[0].severity == "info"  # the recovery notice
    finally:
        release.set()
        scheduler.stop(0)


def test_only_one_scheduler_per_repository_and_the_holder_is_known(tmp_path, isolated_env):
    settings = make_settings(tmp_path)
    first = Scheduler(settings, purpose="console", clock=Clock(T0))
    second = Scheduler(settings, purpose="headless", clock=Clock(T0))
    assert first.start(timers=False)
    try:
        assert not second.start(timers=False)
        assert scheduler_holder(settings)["purpose"] == "scheduler (console)"
        assert (settings.repository_dir / SCHEDULER_LOCK_NAME).exists()
    finally:
        first.stop(0)
    assert second.start(timers=False)
    second.stop(0)


def test_a_run_left_running_by_a_dead_scheduler_is_closed_on_start(tmp_path, isolated_env):
    settings = make_settings(tmp_path)
    with Workspace.open(settings) as workspace:
        job = workspace.catalog.create_job("backup", "scheduled daily backup (full)")
        workspace.catalog.finish_job(job.id, "cancelled", "interrupted")
        run_id = workspace.catalog.record_schedule_run("daily", T0, "running", job_id=job.id)
    scheduler = Scheduler(settings, clock=Clock(T0 + timedelta(hours=1)))
    assert scheduler.start(timers=False)
    try:
        run = scheduler.workspace.catalog.list_schedule_runs("daily")[0]
        assert run.id == run_id and run.outcome == "cancelled"
    finally:
        scheduler.stop(0)


def test_the_scheduler_line_speaks_in_the_operators_words(tmp_path, isolated_env):
    from engines.catalog.times import parse_iso
    from engines.monitoring.status import collect_status
    from engines.scheduling.moments import moment_words

    settings = make_settings(tmp_path, BACKUP_TIMEZONE="UTC")
    with Catalog.open(settings.catalog_path) as catalog:
        report = collect_status(settings, catalog, T0)  # 2025-01-01 00:00 UTC
    assert report.next_text == "daily 02:00 today (in 2 h)"

    scheduler = Scheduler(settings, purpose="console", clock=Clock(T0))
    assert scheduler.start(timers=False)
    try:
        with Catalog.open(settings.catalog_path) as catalog:
            started = parse_iso(scheduler_holder(settings)["started_at"])
            later = started + timedelta(hours=2, minutes=5)
            line = collect_status(settings, catalog, later).scheduler_text
    finally:
        scheduler.stop(0)
    assert f"since {started:%H:%M} " in line and line.endswith("(2 h 5 min ago)")
    assert started.isoformat()[:16] not in line  # no raw ISO timestamp

    zone = ZoneInfo("Europe/Berlin")  # 2025-01-01 01:00 there
    assert moment_words(T0 + timedelta(hours=25), T0, zone) == "02:00 tomorrow (in 1 d 1 h)"
    assert moment_words(T0 + timedelta(days=3), T0, zone) == "01:00 2025-01-04 (in 3 d)"
