"""The scheduled backup takes a PostgreSQL base backup as well when the server archives into
the repository through wal-push (issue #16), by BACKUP_PITR_BASE_SCHEDULE's tier: the
scheduler with an injected clock against a real cluster archiving through our wal-push
(tests/test_pitr_archive.py's fixture), and a server that does not archive there."""

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from engines.catalog.rows import BASE_MODE
from engines.config import Settings
from engines.errors import JarvisError
from engines.pitr.archiving import runs_wal_push, why_not_archiving_here
from engines.scheduling.scheduler import Scheduler
from engines.scheduling.schedules import takes_base_backup
from engines.workspace import Workspace
from tests.scheduling_support import T0, Clock, make_settings, quick_verbs
from tests.test_pitr_archive import Archive, archive  # noqa: F401

SATURDAY_2AM = datetime(2025, 1, 4, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        ("/opt/jarvis/.venv/bin/jarvis-tui --env-file /etc/jarvis.env wal-push %p", True),
        ("'jarvis-tui' wal-push %p", True),
        ("env PYTHONPATH=/x /usr/bin/python3.11 -m jarvis_tui.launch wal-push %p", True),
        ("cp %p /mnt/archive/%f", False),
        ("pgbackrest --stanza=main archive-push %p", False),
        ("wal-g wal-push %p", False),
        ("jarvis-tui wal-fetch %f %p", False),
        ("jarvis-tui wal-push %p; cp %p /elsewhere/%f", False),
        ("jarvis-tui wal-push 'unterminated", False),
        ("", False),
    ],
)
def test_only_our_wal_push_counts_as_archiving_here(command: str, ours: bool) -> None:
    assert runs_wal_push(command) is ours


@pytest.mark.parametrize(
    ("setting", "tiers"),
    [
        ("daily", {"daily", "weekly", "monthly"}),
        ("weekly", {"weekly", "monthly"}),
        ("monthly", {"monthly"}),
        ("off", set()),
    ],
)
def test_the_base_schedule_covers_its_tier_and_above(setting: str, tiers: set[str]) -> None:
    covered = {t for t in ("daily", "weekly", "monthly", "manual") if takes_base_backup(setting, t)}
    assert covered == tiers


def _settings(root: Path, archive: Archive | None, url: str, **variables: str) -> Settings:  # noqa: F811
    """The archive's repository and key (or a fresh repository); the other sources small."""
    (root / "files").mkdir(parents=True)
    (root / "files" / "song.txt").write_text("la la\n")
    (root / "app.env").write_text("APP_SECRET=not-a-real-one\n")
    values = {
        "DATABASE_URL": url,
        "BACKUP_FILE_PATHS": str(root / "files"),
        "BACKUP_SECRET_FILES": str(root / "app.env"),
        "BACKUP_CONFIG_PATHS": str(root / "files"),
        "BACKUP_VERIFY_RESTORE_ENABLED": "false",
        "BACKUP_CLEANUP_ENABLED": "false",
        **variables,
    }
    if archive is not None:
        for line in archive.env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            if name in ("BACKUP_DIR", "BACKUP_ENCRYPTION_KEY"):
                values[name] = value
    return make_settings(root, **values)


def _run_schedules(settings: Settings, start: datetime, until: datetime) -> Scheduler:
    """Every fire time from `start` up to `until`, one tick each (the clock injected)."""
    clock = Clock(start)
    scheduler = Scheduler(settings, clock=clock)
    assert scheduler.start(timers=False)
    while (moment := min(t for s in scheduler.schedules if (t := s.next_after(clock())))) <= until:
        clock.set(moment)
        assert scheduler.tick()
    return scheduler


def _sets(scheduler: Scheduler) -> list[tuple[str, str, bool, datetime]]:
    """(kind, tier, base backup?, created at) of each set, oldest first."""
    catalog = scheduler.workspace.catalog
    found = []
    for backup_set in sorted(catalog.list_backup_sets(), key=lambda s: (s.created_at, s.id)):
        modes = {a.mode for a in catalog.artifacts_of(backup_set.id)}
        assert backup_set.status == "complete", backup_set.error
        found.append(
            (backup_set.kind, backup_set.tier, modes == {BASE_MODE}, backup_set.created_at)
        )
    return found


def test_the_daily_backup_takes_a_base_backup_while_the_server_archives_here(
    archive: Archive,  # noqa: F811
    tmp_path: Path,
    isolated_env,
) -> None:
    settings = _settings(tmp_path, archive, archive.pg.url())
    scheduler = _run_schedules(settings, T0, datetime(2025, 1, 1, 2, 0, tzinfo=UTC))
    try:
        daily = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
        assert _sets(scheduler) == [
            ("full", "daily", False, daily),
            ("postgres", "daily", True, daily),
        ]
        catalog = scheduler.workspace.catalog
        (run,) = catalog.list_schedule_runs("daily")
        assert run.outcome == "succeeded"
        words = " ".join(event.message for event in catalog.job_events(run.job_id))
        assert "the server archives through wal-push: taking a base backup as well" in words
        (base,) = [s for s in catalog.list_backup_sets() if s.kind == "postgres"]
        (artifact,) = catalog.artifacts_of(base.id)
        assert artifact.metadata["system_identifier"] == str(
            archive.pg.execute("SELECT system_identifier FROM pg_control_system()")[0][0]
        )
    finally:
        scheduler.stop(0)


def test_a_weekly_base_schedule_rides_on_the_weekly_backup_only(
    archive: Archive,  # noqa: F811
    tmp_path: Path,
    isolated_env,
) -> None:
    settings = _settings(tmp_path, archive, archive.pg.url(), BACKUP_PITR_BASE_SCHEDULE="weekly")
    # Saturday 02:00 and Sunday 02:00 daily, Sunday 03:00 weekly (the guide's times).
    scheduler = _run_schedules(settings, datetime(2025, 1, 4, 1, 0, tzinfo=UTC),
                               datetime(2025, 1, 5, 3, 0, tzinfo=UTC))  # fmt: skip
    try:
        sunday_3am = datetime(2025, 1, 5, 3, 0, tzinfo=UTC)
        assert [(kind, tier, base) for kind, tier, base, _ in _sets(scheduler)] == [
            ("full", "daily", False),
            ("full", "daily", False),
            ("full", "weekly", False),
            ("postgres", "weekly", True),
        ]
        assert _sets(scheduler)[-1][3] == sunday_3am
    finally:
        scheduler.stop(0)


def test_a_server_that_does_not_archive_here_gets_no_base_backup(
    archive: Archive,  # noqa: F811
    postgres_server,
    tmp_path: Path,
    isolated_env,
) -> None:
    """Detected, not guessed: archiving through wal-push into another repository;
    archiving off."""
    elsewhere = _settings(tmp_path / "elsewhere", None, archive.pg.url())
    with Workspace.open(elsewhere) as workspace, psycopg.connect(archive.pg.url()) as conn:
        reason = why_not_archiving_here(conn, workspace.repository, workspace.keyring())
    assert reason == "nothing was archived into this repository yet (run `jarvis-tui pitr check`)"
    with psycopg.connect(postgres_server.url()) as conn:
        (mode,) = conn.execute("SELECT current_setting('archive_mode')").fetchone()
        expected = (
            f"archiving is off on this server (archive_mode={mode})"
            if mode == "off"
            else "the server's archive_command is not jarvis-tui wal-push (see `pitr setup`)"
        )
        mine = _settings(tmp_path / "mine", archive, postgres_server.url())
        with Workspace.open(mine) as workspace:
            assert why_not_archiving_here(conn, workspace.repository, workspace.keyring()) == (
                expected
            )

    settings = _settings(tmp_path / "run", None, postgres_server.url())
    scheduler = _run_schedules(settings, T0, datetime(2025, 1, 1, 2, 0, tzinfo=UTC))
    try:
        assert [(kind, base) for kind, _, base, _ in _sets(scheduler)] == [("full", False)]
        catalog = scheduler.workspace.catalog
        (run,) = catalog.list_schedule_runs("daily")
        assert run.outcome == "succeeded"
        words = " ".join(event.message for event in catalog.job_events(run.job_id))
        assert f"no PostgreSQL base backup with this scheduled backup: {expected}" in words
    finally:
        scheduler.stop(0)


def test_a_failed_base_backup_leaves_the_scheduled_run_partial(
    tmp_path: Path, isolated_env
) -> None:
    """The backup itself stands; the run says partial (the base backup's own alert is
    raised by the backup verb, tests above run it for real)."""
    settings = make_settings(tmp_path, BACKUP_VERIFY_RESTORE_ENABLED="false")
    asked = []

    def run_verb(verb, workspace, request, context) -> str:
        asked.append((verb, request.tier, request.created_at))
        if verb == "backup-base":
            raise JarvisError("pg_basebackup: could not connect to the server")
        return quick_verbs(verb, workspace, request, context)

    clock = Clock(T0)
    scheduler = Scheduler(settings, clock=clock, run_verb=run_verb)
    assert scheduler.start(timers=False)
    try:
        clock.set(datetime(2025, 1, 1, 2, 0, tzinfo=UTC))
        assert scheduler.tick()
        (run,) = scheduler.workspace.catalog.list_schedule_runs("daily")
        assert run.outcome == "partial"
        assert [verb for verb, _, _ in asked] == ["backup-full", "backup-base"]
        assert asked[1][1:] == ("daily", datetime(2025, 1, 1, 2, 0, tzinfo=UTC))
        words = " ".join(e.message for e in scheduler.workspace.catalog.job_events(run.job_id))
        assert "base backup: pg_basebackup: could not connect to the server" in words
    finally:
        scheduler.stop(0)
