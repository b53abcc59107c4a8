"""Fixtures for the console tests: a seeded catalog at a fixed moment, the app, snapshots.

Snapshots (pytest-textual-snapshot) are stored under the top-level `snapshots/`
folder, one subfolder per test module. Everything a snapshot shows is fixed:
the clock the console reads, the catalog's own timestamps while seeding, the
time zone (UTC, from conftest), the disk space, and relative paths inside the
isolated working directory.
"""

import contextlib
import fcntl
import io
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from pytest_textual_snapshot import SVGImageExtension
from rich.console import Console
from syrupy import SnapshotAssertion
from syrupy.location import PyTestLocation
from textual.worker import WorkerCancelled

from engines.catalog import Catalog
from engines.monitoring.watchdog import DiskSpace
from tests.support.pg_seed import PgCase

__all__ = ["console_env", "pg_case", "seeded_console", "snapshot", "snapshot_console"]

SNAPSHOTS_DIR = Path(__file__).resolve().parent.parent / "snapshots"
SNAPSHOT_ROOT = Path(tempfile.gettempdir()) / "jarvis-console-snapshots"
FIXED_NOW = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
KEY = "0123456789abcdef" * 4
# Port 1 on loopback: nothing listens there, so "unreachable" reads the same everywhere.
CLOSED_PORT = 1


class TopLevelSVGExtension(SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS_DIR / Path(test_location.filepath).stem)


class TopLevelSnapshotAssertion(SnapshotAssertion):
    def use_extension(self, extension_class=None):
        if extension_class is SVGImageExtension:
            extension_class = TopLevelSVGExtension
        return super().use_extension(extension_class)


@pytest.fixture
def snapshot(request: pytest.FixtureRequest) -> SnapshotAssertion:
    """syrupy's fixture, with `snap_compare`'s SVGs kept under `snapshots/`."""
    from syrupy import __import_extension as import_extension  # type: ignore[attr-defined]

    return TopLevelSnapshotAssertion(
        update_snapshots=request.config.option.update_snapshots,
        extension_class=import_extension(request.config.option.default_extension),
        test_location=PyTestLocation(request.node),
        session=request.session.config._syrupy,
    )


def fixed_disk(settings) -> DiskSpace:
    return DiskSpace(settings.repository_dir, 42 * 2**30, 100 * 2**30, 10)


def screen_text(app) -> str:
    """What the terminal shows, as plain text (the SVG snapshot without its styles)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        record=True,
        legacy_windows=False,
        safe_box=False,
        color_system="truecolor",
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    text = console.export_text(styles=False)
    import os

    if os.environ.get("JTUI_DUMP"):
        print(text)
    return text


def screen_words(app) -> str:
    """The screen's text with line breaks and runs of spaces collapsed (wrapped phrases)."""
    return " ".join(screen_text(app).split())


def shows(app, phrase: str) -> bool:
    """Whether the screen shows `phrase`, wherever the terminal wrapped it: long paths (the
    tmp paths of pytest-xdist's workers) break mid-word, so whitespace is left out on both sides.
    """
    return "".join(phrase.split()) in "".join(screen_text(app).split())


def widget_words(app, selector: str) -> str:
    """screen_words of one widget's content only: a dialog's wrapped lines without its borders
    and the screen behind it."""
    region = app.screen.query_one(selector).content_region
    lines = screen_text(app).splitlines()[region.y : region.bottom]
    return " ".join(" ".join(line[region.x : region.right] for line in lines).split())


async def settle(pilot) -> None:
    """Until the workers the last keys started are done and their messages handled. A worker
    cancelled meanwhile (an exclusive one replaced by a newer, as a resize re-polls the job
    log) counts as done: textual's wait_for_complete would raise WorkerCancelled for it."""
    for _ in range(2):
        for worker in list(pilot.app.workers):
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
        await pilot.pause()


async def wait_until(pilot, condition, timeout: float = 30.0) -> None:
    """Until `condition()` holds, checked every 0.1 s: for what real processes bring about."""
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("the console never showed what the test waited for")


async def paste_into(pilot, selector: str, text: str) -> None:
    """Click a field, clear it and paste `text`, as a terminal's bracketed paste delivers it.

    Long paths typed key by key would cost the suite seconds per field.
    """
    from textual import events

    await pilot.click(selector)
    await pilot.press("ctrl+a", "ctrl+k")
    pilot.app.focused.post_message(events.Paste(text))
    await pilot.pause()


async def confirm_and_run(pilot, typed: str) -> None:
    """A wizard's typed confirmation, its run, and on to the result page."""
    await paste_into(pilot, "#confirm-typed", typed)
    await pilot.press("ctrl+n")
    await settle(pilot)
    await pilot.press("ctrl+n")


Wizard = TypeVar("Wizard")


async def choose_restore(pilot, position: int, wizard_type: type[Wizard]) -> Wizard:
    """Restore (R), the choice `position` places down the list; its wizard, checked."""
    await pilot.press("R")
    await settle(pilot)
    await pilot.press(*["down"] * position, "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, wizard_type)
    return pilot.app.screen


@dataclass
class ConsoleEnv:
    """Settings for a console test; every path relative to the isolated working folder."""

    cwd: Path
    env_file: Path

    def app(self, **options):
        from jarvis_tui.app import make_app

        options.setdefault("clock", lambda: FIXED_NOW)
        options.setdefault("disk_space", fixed_disk)
        options.setdefault("poll_seconds", None)
        options.setdefault("host_scheduler", False)
        return make_app(self.env_file, **options)

    @property
    def catalog_path(self) -> Path:
        return self.cwd / "catalog.sqlite3"

    def catalog(self) -> Catalog:
        return Catalog.open(self.catalog_path)


def write_console_env(cwd: Path, **extra: str) -> Path:
    lines = {
        "BACKUP_DIR": "repo",
        "BACKUP_CATALOG_PATH": "catalog.sqlite3",
        "BACKUP_LOG_DIR": "logs",
        "BACKUP_ENCRYPTION_KEY": KEY,
        "BACKUP_TIMEZONE": "UTC",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(CLOSED_PORT),
        "POSTGRES_USER": "jarvis",
        "POSTGRES_DB": "jarvis",
        "REDIS_URL": f"redis://127.0.0.1:{CLOSED_PORT}/0",
        "BACKUP_FILE_PATHS": "data/uploads",
        **extra,
    }
    path = cwd / "jarvis.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items() if v is not None))
    return Path("jarvis.env")


@pytest.fixture
def pg_case(postgres_server, tmp_path, isolated_env) -> Iterator[PgCase]:
    """A seeded throwaway database with one PostgreSQL backup, for the restore wizards."""
    case = PgCase(postgres_server, tmp_path)
    assert case.cli("backup", "postgres") == 0
    yield case
    case.cleanup()


@pytest.fixture
def console_env(isolated_env) -> ConsoleEnv:
    (isolated_env.cwd / "repo").mkdir(mode=0o700)
    (isolated_env.cwd / "data" / "uploads").mkdir(parents=True)  # BACKUP_FILE_PATHS exists
    return ConsoleEnv(isolated_env.cwd, write_console_env(isolated_env.cwd))


# -- a catalog seeded at fixed moments -----------------------------------------------------


class FrozenCatalogClock:
    """Makes the catalog stamp rows with `moment` instead of the wall clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, moment: datetime):
        import engines.catalog.backups as backups
        import engines.catalog.times as times

        self.moment = moment
        monkeypatch.setattr(times, "utc_now", lambda: self.moment)
        monkeypatch.setattr(backups, "utc_now", lambda: self.moment)


PG_TABLES = [
    {"schema": "app", "name": "users", "rows": 300, "indexes": ["users_name_idx"]},
    {"schema": "public", "name": "orders", "rows": 900, "indexes": []},
    {"schema": "public", "name": "empty_table", "rows": 0, "indexes": []},
]


def _artifact(
    catalog: Catalog,
    set_id: str,
    source: str,
    mode: str,
    name: str,
    size: int,
    metadata: dict,
    verified: bool | None = None,
) -> None:
    artifact = catalog.add_artifact(set_id, source, mode, f"{source}/{set_id}_{name}")
    catalog.complete_artifact(
        artifact.id,
        checksum=(set_id.encode().hex() * 4)[:64],
        stored_size=size,
        plain_size=size * 4,
        key_id="3f9a1c2e",
        codec="gzip",
        metadata={"set_id": set_id, "source": source, "mode": mode, **metadata},
    )
    catalog.set_copy_state(artifact.id, "local", "stored")
    if verified is not None:
        catalog.record_verification(
            artifact.id,
            verified,
            "sha256 ok, 12 chunks" if verified else "chunk 3 failed authentication",
        )


def seed_catalog(catalog: Catalog, clock: FrozenCatalogClock, days: int = 8) -> None:
    """A week of daily backups of several sources, a failure, jobs and alerts."""
    for day in range(days, -1, -1):
        start = FIXED_NOW.replace(hour=2, minute=0) - timedelta(days=day)
        clock.moment = start
        tier = "weekly" if start.weekday() == 6 else "daily"
        pg = catalog.create_backup_set("postgres", tier=tier, created_at=start)
        meta = {
            "database": "jarvis",
            "table_count": 3,
            "total_rows": 1200,
            "tables": PG_TABLES,
            "server_version": "16.4",
            "content": "database",
        }
        _artifact(
            catalog,
            pg.id,
            "postgres",
            "full",
            "jarvis.dump.gz.enc",
            48_000_000 + day,
            meta,
            verified=True if day > 1 else None,
        )
        _artifact(
            catalog,
            pg.id,
            "postgres",
            "globals",
            "globals.sql.gz.enc",
            2_000,
            {"content": "globals"},
        )
        clock.moment = start + timedelta(minutes=4)
        catalog.finish_backup_set(pg.id, "complete")
        if day >= 2:
            clock.moment = start + timedelta(minutes=10)
            rd = catalog.create_backup_set("redis", tier=tier, created_at=clock.moment)
            _artifact(
                catalog,
                rd.id,
                "redis",
                "rdb",
                "dump.rdb.gz.enc",
                3_100_000,
                {"keys": 5200, "redis_version": "7.2.4"},
            )
            catalog.finish_backup_set(rd.id, "complete")
        clock.moment = start + timedelta(minutes=20)
        fl = catalog.create_backup_set("files", tier=tier, created_at=clock.moment)
        _artifact(
            catalog,
            fl.id,
            "files",
            "snapshot",
            "manifest.gz.enc",
            700_000,
            {"files": 1834, "total_bytes": 2_400_000_000},
        )
        catalog.finish_backup_set(fl.id, "complete")
    clock.moment = FIXED_NOW - timedelta(hours=19)
    failed = catalog.create_backup_set("postgres", tier="manual", created_at=clock.moment)
    catalog.finish_backup_set(failed.id, "failed", "PostgreSQL refused an operation: disk full")
    clock.moment = FIXED_NOW - timedelta(days=3, hours=6)
    secrets = catalog.create_backup_set("secrets", tier="manual", created_at=clock.moment)
    _artifact(
        catalog,
        secrets.id,
        "secrets",
        "file",
        "env.gz.enc",
        1_200,
        {"variables": 31},
        verified=False,
    )
    catalog.finish_backup_set(secrets.id, "complete")
    seed_alerts(catalog, clock)


def seed_alerts(catalog: Catalog, clock: FrozenCatalogClock) -> None:
    clock.moment = FIXED_NOW - timedelta(hours=6, minutes=30)
    catalog.record_alert(
        "warning",
        "missing_backup:redis",
        "no successful redis backup for 55 h",
        {"slack": "sent (200)", "email": "failed: connection refused"},
    )
    clock.moment = FIXED_NOW - timedelta(hours=19)
    catalog.record_alert(
        "critical", "backup_failed", "postgres backup failed: disk full", {"slack": "sent (200)"}
    )


def seed_jobs(catalog: Catalog, clock: FrozenCatalogClock, catalog_path: Path) -> None:
    """A finished verify, a failed backup, and a backup running on another host."""
    clock.moment = FIXED_NOW - timedelta(hours=2)
    verify = catalog.create_job("verify", "verify postgres_2026-05-01_020000")
    catalog.add_job_event(verify.id, "info", "verifying postgres/…_jarvis.dump.gz.enc")
    clock.moment += timedelta(seconds=14)
    catalog.update_job_progress(verify.id, 48_000_000, 48_000_000)
    catalog.add_job_event(verify.id, "info", "ok (12 chunks authenticated)")
    catalog.finish_job(verify.id, "succeeded")
    clock.moment = FIXED_NOW - timedelta(hours=19)
    failed = catalog.create_job("backup", "backup postgres")
    catalog.add_job_event(failed.id, "error", "PostgreSQL refused an operation: disk full")
    catalog.finish_job(failed.id, "failed", "PostgreSQL refused an operation: disk full")
    clock.moment = FIXED_NOW - timedelta(minutes=3)
    running = catalog.create_job("backup", "backup files (scheduled daily)")
    for second, line in enumerate(("started backup", "reading data/uploads", "1834 files")):
        clock.moment = FIXED_NOW - timedelta(minutes=3) + timedelta(seconds=second * 20)
        catalog.add_job_event(running.id, "info", line)
    catalog.update_job_progress(running.id, 960_000_000, 2_400_000_000)
    with contextlib.closing(sqlite3.connect(catalog_path)) as conn, conn:
        # Jobs from another machine: their process is not this test's to check or mark.
        conn.execute("UPDATE jobs SET pid = 4242, host = 'backup-host'")


@pytest.fixture
def snapshot_console(isolated_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsoleEnv]:
    """The seeded console in one fixed folder, so even absolute paths read the same.

    Test runs on one machine take turns through a lock on that folder.
    """
    with open(f"{SNAPSHOT_ROOT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)
        SNAPSHOT_ROOT.mkdir(mode=0o700)
        (SNAPSHOT_ROOT / "repo").mkdir(mode=0o700)
        (SNAPSHOT_ROOT / "data" / "uploads").mkdir(parents=True)  # BACKUP_FILE_PATHS exists
        monkeypatch.chdir(SNAPSHOT_ROOT)
        # Sealed metadata names the host, so sizes on screen would follow its name.
        monkeypatch.setattr(socket, "gethostname", lambda: "jarvis-host")
        env = ConsoleEnv(SNAPSHOT_ROOT, write_console_env(SNAPSHOT_ROOT))
        clock = FrozenCatalogClock(monkeypatch, FIXED_NOW)
        with env.catalog() as catalog:
            seed_catalog(catalog, clock)
            seed_jobs(catalog, clock, env.catalog_path)
        clock.moment = FIXED_NOW
        try:
            yield env
        finally:
            shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)


@pytest.fixture
def seeded_console(
    console_env: ConsoleEnv, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleEnv]:
    clock = FrozenCatalogClock(monkeypatch, FIXED_NOW)
    with console_env.catalog() as catalog:
        seed_catalog(catalog, clock)
        seed_jobs(catalog, clock, console_env.catalog_path)
    clock.moment = FIXED_NOW
    yield console_env
