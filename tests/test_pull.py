"""`jarvis-tui pull [--latest | SET] [--dry-run]`: the repository given back what it lost
from moto's S3 (over HTTP on loopback), each object authenticated before it is stored
under its name; a damaged object is refused and not stored; a pull killed mid-object
leaves nothing under a final name and the next pull completes.
"""

import subprocess
import time

import pytest

from engines.destinations import LocalRepository
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import REPO_ROOT, FilesEnv, child_env, make_files_env, random_text
from tests.support.s3_hosts import BUCKET, PREFIX, s3_settings
from tests.support.s3_stall import StallingS3Proxy


@pytest.fixture
def env(tmp_path, isolated_env, s3_server) -> FilesEnv:
    s3_server.create_bucket(BUCKET)
    files = make_files_env(tmp_path / "files")
    for number in range(6):
        (files.data / f"f{number}.txt").write_bytes(random_text(70_000, number))
    secrets = files.root / "app.env"
    secrets.write_text("API_TOKEN=from-the-copy\n")
    files.set(BACKUP_SECRET_FILES=str(secrets), **s3_settings(s3_server))
    return files


def local(env: FilesEnv) -> dict[str, bytes]:
    repository = LocalRepository(env.repo)
    return {item.key: repository.path_for(item.key).read_bytes() for item in repository.list()}


def on_s3(s3_server) -> dict[str, bytes]:
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/").get("Contents", [])
    return {
        item["Key"].removeprefix(f"{PREFIX}/"): client.get_object(Bucket=BUCKET, Key=item["Key"])[
            "Body"
        ].read()
        for item in listed
        if not item["Key"].removeprefix(f"{PREFIX}/").startswith(".")
    }


def lose_local_objects(env: FilesEnv) -> None:
    repository = LocalRepository(env.repo)
    for item in list(repository.list()):
        repository.delete(item.key)


def set_keys(env: FilesEnv, set_id: str) -> set[str]:
    with env.workspace() as workspace:
        found = {f"sets/{set_id}.json.enc"}
        for artifact in workspace.catalog.artifacts_of(set_id):
            found |= {artifact.relpath, artifact.relpath + ".metadata.json"}
        return found


def local_states(env: FilesEnv) -> dict[str, str | None]:
    with env.workspace() as workspace:
        return {
            a.relpath: {c.destination: c.state for c in workspace.catalog.copies_of(a.id)}.get(
                "local"
            )
            for a in workspace.catalog.all_artifacts()
        }


def latest_id(env: FilesEnv, kind: str | None = None) -> str:
    with env.workspace() as workspace:
        return workspace.catalog.get_backup_set("latest", kind).id


def test_pull_dry_run_then_everything_then_nothing_left(env, s3_server, capsys):
    assert env.cli("backup", "files") == ExitCode.OK
    (env.data / "f0.txt").write_bytes(random_text(80_000, 50))
    assert env.cli("backup", "files") == ExitCode.OK
    assert env.cli("backup", "secrets") == ExitCode.OK
    before = local(env)
    assert on_s3(s3_server) == before
    lose_local_objects(env)
    capsys.readouterr()

    assert env.cli("pull", "--dry-run") == ExitCode.OK
    out = capsys.readouterr().out
    sidecars = [k for k in before if k.endswith(".metadata.json")]
    assert f"would download {len(before) - len(sidecars)} object(s)" in out  # with sidecars
    assert local(env) == {}
    listed = {line.split()[2] for line in out.splitlines() if line.startswith("  would pull ")}
    assert listed | {k + ".metadata.json" for k in listed} >= set(before)

    assert env.cli("pull") == ExitCode.OK
    out = capsys.readouterr().out
    assert local(env) == before
    assert set(local_states(env).values()) == {"stored"}
    assert "pulled files/packs/" in out

    assert env.cli("pull") == ExitCode.OK
    assert "nothing to download" in capsys.readouterr().out
    # What was pulled is read from here now; with S3 turned off it still restores.
    env.set(S3_ENABLED="false")
    target = env.root / "back"
    target.mkdir()
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    assert {p.name: p.read_bytes() for p in target.rglob("*.txt")} == {
        p.name: p.read_bytes() for p in env.data.iterdir()
    }


def test_pull_one_set_brings_what_it_needs_and_latest_the_newest(env, s3_server, capsys):
    assert env.cli("backup", "files") == ExitCode.OK
    first = latest_id(env)
    first_tree = {p.name: p.read_bytes() for p in env.data.iterdir()}
    first_objects = local(env)
    (env.data / "new.txt").write_bytes(random_text(90_000, 77))
    assert env.cli("backup", "files") == ExitCode.OK
    second_packs = {k for k in local(env) if k.startswith("files/packs/")} - set(first_objects)
    assert second_packs  # the second backup wrote a pack of its own
    assert env.cli("backup", "secrets") == ExitCode.OK
    newest = latest_id(env)
    lose_local_objects(env)

    assert env.cli("pull", first) == ExitCode.OK
    here = local(env)
    assert set(here) >= set_keys(env, first)
    assert not set(here) & second_packs  # nothing of the other sets' data
    assert not set(here) & set_keys(env, newest)
    assert {k for k in here if k.startswith("files/packs/")} <= set(first_objects)
    env.set(S3_ENABLED="false")
    target = env.root / "first"
    target.mkdir()
    assert env.cli("restore", "files", first, "--target-dir", str(target)) == ExitCode.OK
    assert {p.name: p.read_bytes() for p in target.rglob("*.txt")} == first_tree

    env.set(S3_ENABLED="true")
    capsys.readouterr()
    assert env.cli("pull", "--latest") == ExitCode.OK
    out = capsys.readouterr().out
    assert f"of backup set {newest}" in out
    assert set(local(env)) >= set_keys(env, newest)
    assert not set(local(env)) & second_packs


def test_a_damaged_object_on_s3_is_refused_and_not_stored(env, s3_server):
    assert env.cli("backup", "files") == ExitCode.OK
    before = local(env)
    (pack,) = [k for k in before if k.startswith("files/packs/")][:1]
    lose_local_objects(env)
    client = s3_server.client()
    body = bytearray(before[pack])
    body[len(body) // 3] ^= 0x01
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{pack}", Body=bytes(body))

    done = env.cli_process("pull")
    assert done.returncode == ExitCode.INTEGRITY, done.stderr
    assert f"error: {pack} was not stored" in done.stderr and "Traceback" not in done.stderr
    here = local(env)
    assert pack not in here
    assert {k: v for k, v in before.items() if k != pack} == here


def test_a_pull_killed_mid_object_leaves_nothing_under_a_final_name(env, s3_server):
    assert env.cli("backup", "files") == ExitCode.OK
    before = local(env)
    lose_local_objects(env)
    # The snapshot's manifest comes after its packs and index: those are stored by then.
    proxy = StallingS3Proxy(s3_server.endpoint_url, stall_on="_snapshot.json.").start()
    try:
        env.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        pulling = subprocess.Popen(
            [*env.cli_argv(), "pull"], cwd=REPO_ROOT, env=child_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while not proxy.stalled.wait(0.1) and time.monotonic() < deadline:
                assert pulling.poll() is None, pulling.communicate()  # it must hang there
            assert proxy.stalled.is_set(), "the pull never reached the manifest"
            time.sleep(0.2)  # half the body is in the staged file by now
        finally:
            pulling.kill()
            pulling.wait(30)
    finally:
        proxy.close()
    here = local(env)
    assert any(k.startswith("files/packs/") for k in here)
    assert not any("snapshot" in k for k in here)
    for key, data in here.items():
        assert data == before[key], f"{key} is stored incomplete"

    env.set(S3_ENDPOINT_URL=s3_server.endpoint_url)
    assert env.cli("pull") == ExitCode.OK
    assert local(env) == before
    leftovers = [p for p in env.repo.iterdir() if p.name.startswith(".pull")]
    assert leftovers == [] or all(not any(p.iterdir()) for p in leftovers)


def test_an_archived_object_is_not_pulled_and_says_how_to_restore_it(env, s3_server):
    assert env.cli("backup", "secrets") == ExitCode.OK
    before = local(env)
    (artifact,) = [k for k in before if k.startswith("secrets/") and k.endswith(".enc")]
    lose_local_objects(env)
    s3_server.client().copy_object(
        Bucket=BUCKET, Key=f"{PREFIX}/{artifact}", StorageClass="DEEP_ARCHIVE",
        CopySource={"Bucket": BUCKET, "Key": f"{PREFIX}/{artifact}"},
    )  # fmt: skip
    done = env.cli_process("pull")
    assert done.returncode == ExitCode.FAILED, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert artifact in line and "DEEP_ARCHIVE" in line and "aws s3api restore-object" in line
    here = local(env)
    assert artifact not in here and artifact + ".metadata.json" not in here
    assert {k: v for k, v in before.items() if not k.startswith("secrets/")} == here


def test_an_artifact_lost_without_its_sidecar_is_pulled_and_checked_against_it(env, s3_server):
    assert env.cli("backup", "secrets") == ExitCode.OK
    before = local(env)
    (artifact,) = [k for k in before if k.startswith("secrets/") and k.endswith(".enc")]
    LocalRepository(env.repo).delete(artifact)  # the sidecar stays
    done = env.cli_process("pull")
    assert done.returncode == ExitCode.OK, done.stderr
    assert [ln.split()[1] for ln in done.stdout.splitlines() if "pulled " in ln[:9]] == [artifact]
    assert local(env) == before


def test_a_download_cut_off_mid_object_is_fetched_again_and_the_pull_completes(env, s3_server):
    assert env.cli("backup", "files") == ExitCode.OK
    before = local(env)
    lose_local_objects(env)
    proxy = StallingS3Proxy(s3_server.endpoint_url, stall_on="/packs/", hang=False).start()
    try:
        env.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        done = env.cli_process("pull")
    finally:
        proxy.close()
    assert proxy.stalled.is_set()  # a pack's body was cut off half-way
    assert done.returncode == ExitCode.OK, done.stderr
    assert local(env) == before
