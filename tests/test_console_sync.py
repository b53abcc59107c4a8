"""The Catalog's `s Sync S3`: the `sync` verb as a job in the console's job process.

The copy destination is moto's S3 over HTTP on loopback, configured by the guide's
settings: the job runs in a child process, which reads the settings itself, so a
destination kind registered only in the test's process would not reach it.
"""

from engines.destinations import LocalRepository
from jarvis_tui.app import make_app
from jarvis_tui.exit_codes import ExitCode
from tests.console_fixtures import screen_words, wait_until
from tests.support.files_env import make_files_env, random_text
from tests.support.s3_hosts import BUCKET, PREFIX, s3_settings
from tests.test_copies import copy_states, listing


async def test_sync_in_the_catalog_copies_what_s3_lacks_and_records_stored(
    tmp_path, isolated_env, s3_server
):
    env = make_files_env(tmp_path / "files")
    for number in range(4):
        (env.data / f"f{number}.txt").write_bytes(random_text(20_000, number))
    env.set(**s3_settings(s3_server))
    # The bucket does not exist yet: the backup's own copy fails and is recorded failed.
    assert env.cli("backup", "files") == ExitCode.OK
    with env.workspace() as workspace:
        assert {w["s3"] for w in copy_states(workspace).values()} == {"failed"}
    s3_server.create_bucket(BUCKET)
    client = s3_server.client()
    assert client.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    repository = LocalRepository(env.repo)
    here = listing(repository)
    assert here

    app = make_app(env.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: "Sync S3" in screen_words(app))
        await pilot.press("s")
        await wait_until(pilot, lambda: f"s3: copied {len(here)} object(s)" in screen_words(app))
        shown = screen_words(app)
        assert "Synced" in shown
        assert "not in this build" not in shown
        await wait_until(pilot, lambda: not app.runner.running_jobs())

    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    uploaded = {item["Key"]: item["Size"] for item in listed["Contents"]}
    assert uploaded == {
        f"{PREFIX}/.repository-id": 33,  # the repository's id goes with its objects
        **{f"{PREFIX}/{key}": size for key, size in here.items()},
    }
    for key in here:
        body = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"]
        assert body.read() == repository.path_for(key).read_bytes(), key
    with env.workspace() as workspace:
        for relpath, where in copy_states(workspace).items():
            assert where == {"local": "stored", "s3": "stored"}, relpath
        (job,) = [j for j in workspace.catalog.list_jobs() if j.description == "sync copies"]
        assert job.status == "succeeded"


async def test_sync_without_a_copy_destination_says_so_and_starts_nothing(tmp_path, isolated_env):
    env = make_files_env(tmp_path / "files")
    (env.data / "f.txt").write_bytes(random_text(5_000, 1))
    assert env.cli("backup", "files") == ExitCode.OK
    with env.workspace() as workspace:
        jobs_before = len(workspace.catalog.list_jobs())

    app = make_app(env.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: "Sync S3" in screen_words(app))
        await pilot.press("s")
        await wait_until(pilot, lambda: "No copy destination is configured" in screen_words(app))
        assert "nothing to sync." in screen_words(app)  # one toast (wrapped by its width)
        assert not app.runner.running_jobs()
        assert not [w for w in app.workers if w.group == "jobs"]
    with env.workspace() as workspace:
        assert len(workspace.catalog.list_jobs()) == jobs_before
