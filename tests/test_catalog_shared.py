"""The console's two catalogs (panes and scheduler) beside CLI commands in other processes.

Closing any descriptor of a file drops every fcntl lock the process holds on it,
SQLite connections' included. A catalog whose locks were dropped that way looks
unused to the next process that closes its connection, which then deletes `-wal`
and `-shm` from under it: its writes go to an unlinked file nobody else reads.
"""

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engines.catalog import Catalog, catalog_files
from engines.config import load_settings
from engines.workspace import Workspace
from jarvis_tui.engine_access import EngineAccess
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, make_secrets_env

ROUNDS = 3
PLANNED = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_secrets_env(tmp_path / "files", "not-a-real-token")


def open_journal_files(catalog_path: Path) -> dict[int, tuple[str, int]]:
    """Descriptors of this process on the catalog's -wal and -shm: fd -> (name, inode)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        name = target.removesuffix(" (deleted)")
        if name in (f"{catalog_path}-wal", f"{catalog_path}-shm"):
            found[int(fd)] = (name, os.fstat(int(fd)).st_ino)
    return found


def still_linked(catalog_path: Path, opened: dict[int, tuple[str, int]]) -> list[str]:
    """The -wal/-shm files open here that are no longer the ones at their path."""
    gone = []
    for fd, (name, inode) in opened.items():
        info = os.fstat(fd)
        try:
            at_path = os.stat(name).st_ino
        except FileNotFoundError:
            at_path = None
        if info.st_ino != inode or info.st_nlink == 0 or at_path != inode:
            gone.append(name)
    return gone


def test_console_catalogs_keep_their_locks_beside_cli_processes(env):
    settings = load_settings(environ={}, env_file=env.env_file)
    access = EngineAccess(settings)
    panes = access.catalog()  # the console's own reader, opened first
    scheduler = Workspace.open(settings)  # the scheduler's workspace, opened second
    catalog_path = settings.catalog_path
    try:
        opened = open_journal_files(catalog_path)
        assert {name for name, _ in opened.values()} == {
            f"{catalog_path}-wal",
            f"{catalog_path}-shm",
        }
        for name in ("-wal", "-shm"):
            assert stat.S_IMODE(os.stat(f"{catalog_path}{name}").st_mode) == 0o600

        for number in range(ROUNDS):
            alert = f"console alert {number}"
            panes.record_alert("warning", "test", alert)
            job = scheduler.catalog.create_job("scheduled-backup", f"round {number}")
            run_id = scheduler.catalog.record_schedule_run(
                "nightly", PLANNED, "running", job_id=job.id
            )

            backup = env.cli_process("backup", "secrets")
            assert backup.returncode == ExitCode.OK, backup.stderr
            alerts = env.cli_process("alerts", "list")
            assert alerts.returncode == ExitCode.OK, alerts.stderr
            assert alert in alerts.stdout  # the console's write, seen by another process
            listing = env.cli_process("list", "--json")
            assert listing.returncode == ExitCode.OK, listing.stderr
            listed = {s["id"] for s in json.loads(listing.stdout)}
            assert len(listed) == number + 1

            # Another process's writes, seen by both of the console's catalogs.
            assert {s.id for s in panes.list_backup_sets()} == listed
            assert {s.id for s in scheduler.catalog.list_backup_sets()} == listed
            # Each of the console's catalogs sees the other's writes, and can go on writing.
            assert any(j.id == job.id for j in panes.list_jobs())
            assert scheduler.catalog.list_alerts(1)[0].message == alert
            scheduler.catalog.finish_schedule_run(run_id, "succeeded", PLANNED, job_id=job.id)
            assert panes.latest_schedule_run("nightly").outcome == "succeeded"

            assert still_linked(catalog_path, opened) == [], f"round {number}"
    finally:
        scheduler.close()
        access.close()

    checker = sqlite3.connect(catalog_path)
    try:
        assert checker.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        assert checker.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == ROUNDS
        assert checker.execute("SELECT COUNT(*) FROM schedule_runs").fetchone()[0] == ROUNDS
        assert checker.execute("SELECT COUNT(*) FROM backup_sets").fetchone()[0] == ROUNDS
    finally:
        checker.close()


@pytest.mark.parametrize("kind", ["files", "config"])
def test_a_backup_of_the_folder_holding_the_catalog_never_opens_its_files(tmp_path, kind):
    """Reading the catalog or its journals to back them up would drop the backup
    process's own SQLite locks on them when the file is closed."""
    env = make_files_env(tmp_path / "files")
    state = env.data / "state"
    state.mkdir()
    (state / "kept.txt").write_text("backed up\n")
    catalog_path = state / "catalog.sqlite3"
    env.set(BACKUP_CATALOG_PATH=str(catalog_path), BACKUP_CONFIG_PATHS=str(state))
    console = Catalog.open(catalog_path)  # open beside the backup, as the console's is
    try:
        backup = env.cli_process("backup", kind)
        assert backup.returncode == ExitCode.OK, backup.stderr
        target = tmp_path / "restored"
        target.mkdir()
        restore = env.cli_process("restore", kind, "latest", "--target-dir", str(target))
        assert restore.returncode == ExitCode.OK, restore.stderr
        restored = {path.name for path in target.rglob("*")}
        assert "kept.txt" in restored
        assert restored.isdisjoint(path.name for path in catalog_files(catalog_path))
        assert console.list_backup_sets()[0].status == "complete"
    finally:
        console.close()
