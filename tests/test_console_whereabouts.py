"""The console shows where each backup lives: the Catalog's Where column and set detail,
the dashboard's copy destination row; copy states recorded by a real backup whose upload
moto's S3 refused (through a read-only proxy) and by the Catalog's own `s Sync S3`.
"""

from jarvis_tui.app import make_app
from jarvis_tui.exit_codes import ExitCode
from tests.console_fixtures import screen_words
from tests.support.files_env import make_files_env, random_text
from tests.support.s3_read_only import ReadOnlyS3Proxy
from tests.test_console_jobs import wait_until
from tests.test_console_sync import s3_settings


async def test_catalog_and_dashboard_show_a_failed_copy_until_sync_completes_it(
    tmp_path, isolated_env, s3_server
):
    env = make_files_env(tmp_path / "files")
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
        assert f"not yet: {backup_set.id}" in shown

        await pilot.press("2")
        await wait_until(pilot, lambda: "local, s3 failed 1" in screen_words(app))
        await wait_until(pilot, lambda: "s3 copy failed:" in screen_words(app))
        shown = screen_words(app)
        assert "off-site: NOT complete (local, s3 failed 1); s syncs" in shown
        assert f"{artifact.relpath} " in shown
        assert "stored: local stored, s3 failed" in shown
        assert "AccessDenied" in shown

        await pilot.press("s")
        await wait_until(pilot, lambda: "local+s3" in screen_words(app))
        await wait_until(pilot, lambda: "off-site: complete on s3" in screen_words(app))
        shown = screen_words(app)
        assert "s3 failed" not in shown and "s3 copy failed" not in shown
        assert "stored: local stored, s3 stored" in shown
        await wait_until(pilot, lambda: not app.runner.running_jobs())

        await pilot.press("1")
        await wait_until(pilot, lambda: "1 of 1 sets off-site" in screen_words(app))
        assert "in sync" in screen_words(app)
