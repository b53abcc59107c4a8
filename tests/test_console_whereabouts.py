"""The console shows where each backup lives: the Catalog's Where column and set detail,
the dashboard's copy destination row; copy states recorded by a real backup whose upload
moto's S3 refused (through a read-only proxy) and by the Catalog's own `s Sync S3`.
"""

import tempfile
from pathlib import Path

import pytest

from jarvis_tui.app import make_app
from jarvis_tui.exit_codes import ExitCode
from tests.console_fixtures import CLOSED_PORT, screen_words, wait_until, write_console_env
from tests.support.files_env import make_files_env, random_text
from tests.support.s3_read_only import ReadOnlyS3Proxy
from tests.test_console_snapshots import press_and_settle, settle
from tests.test_console_sync import s3_settings


async def test_catalog_and_dashboard_show_a_failed_copy_until_sync_completes_it(
    isolated_env, s3_server
):
    # A short folder: the local destination's long tmp path (pytest-xdist adds popen-gwN/)
    # squeezed the dashboard's Status column to "in …".
    with tempfile.TemporaryDirectory(prefix="jw-") as short:
        await check_a_failed_copy_until_sync(make_files_env(Path(short) / "files"), s3_server)


async def check_a_failed_copy_until_sync(env, s3_server) -> None:
    for number in range(3):
        (env.data / f"f{number}.txt").write_bytes(random_text(20_000, number))
    s3_server.create_bucket(s3_settings(s3_server)["S3_BUCKET"])
    with ReadOnlyS3Proxy(s3_server.endpoint_url) as proxy:
        env.set(**{**s3_settings(s3_server), "S3_ENDPOINT_URL": proxy.endpoint_url})
        assert env.cli("backup", "files") == ExitCode.OK
    env.set(**s3_settings(s3_server))
    with env.workspace() as workspace:
        (backup_set,) = workspace.catalog.list_backup_sets()
        (artifact,) = workspace.catalog.artifacts_of(backup_set.id)

    app = make_app(env.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: "0 of 1 sets off-site" in screen_words(app))
        shown = screen_words(app)
        assert "copy failed" in shown
        assert f"newest not off-site {backup_set.id}" in shown

        await pilot.press("2")
        await wait_until(pilot, lambda: "local, s3 failed 1" in screen_words(app))
        await wait_until(pilot, lambda: f"s3: {artifact.relpath} failed:" in screen_words(app))
        shown = screen_words(app)
        assert "off-site: NOT complete (local, s3 failed 1); s syncs" in shown
        assert f"{artifact.relpath} " in shown
        assert "stored: local stored, s3 failed" in shown
        assert "AccessDenied" in shown

        await pilot.press("s")
        await wait_until(pilot, lambda: "local+s3" in screen_words(app))
        await wait_until(pilot, lambda: "off-site: complete on s3" in screen_words(app))
        shown = screen_words(app)
        assert "s3 failed" not in shown and " failed:" not in shown
        assert "stored: local stored, s3 stored" in shown
        await wait_until(pilot, lambda: not app.runner.running_jobs())

        await pilot.press("1")
        # Each on the dashboard's next poll: wait, never a fixed pause.
        await wait_until(pilot, lambda: "1 of 1 sets off-site" in screen_words(app))
        await wait_until(pilot, lambda: "in sync" in screen_words(app))


# -- snapshots: the seeded catalog with S3 configured and copy states of each kind ----------

NEWEST_FILES = "files_2026-05-01_022000"  # not copied yet
NEWEST_POSTGRES = "postgres_2026-05-01_020000"  # one artifact copied, one copy failed


@pytest.fixture
def console_with_copies(snapshot_console):
    write_console_env(
        snapshot_console.cwd,
        S3_ENABLED="true",
        S3_BUCKET="jarvis-offsite",
        S3_ENDPOINT_URL=f"http://127.0.0.1:{CLOSED_PORT}",
        AWS_REGION="us-east-1",
    )
    with snapshot_console.catalog() as catalog:
        for backup_set in catalog.list_backup_sets():
            if backup_set.id == NEWEST_FILES:
                continue
            for artifact in catalog.artifacts_of(backup_set.id):
                if backup_set.id == NEWEST_POSTGRES and artifact.mode == "globals":
                    error = f"{artifact.relpath}: S3 bucket jarvis-offsite: AccessDenied (403)"
                    catalog.set_copy_state(artifact.id, "s3", "failed", error)
                else:
                    catalog.set_copy_state(artifact.id, "s3", "stored")
    return snapshot_console


def keys_then_detail(*keys: str):
    """Press `keys`, then wait out the detail panel's pause after the cursor rests."""
    pressed = press_and_settle(*keys)

    async def run_before(pilot) -> None:
        await pressed(pilot)
        await pilot.pause(0.4)
        await settle(pilot)

    return run_before


@pytest.mark.parametrize(
    "keys",
    [("2",), ("2", "down"), ("1",)],
    ids=("catalog-missing", "catalog-failed", "dashboard"),
)
def test_where_backups_live(snap_compare, console_with_copies, keys):
    assert snap_compare(
        console_with_copies.app(), terminal_size=(120, 40), run_before=keys_then_detail(*keys)
    )
