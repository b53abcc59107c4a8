"""Deleting sets while S3 cannot be reached: the repository's copies go, S3's stay and
the catalog says exactly that; the sets stay listed, marked, and the next cleanup with S3
back finishes them first, whatever retention says by then. Real files backups copied to
moto's S3 over HTTP, the real CLI; S3 unreachable is a loopback port that refuses."""

import threading

import pytest

from engines.destinations import LocalRepository
from engines.errors import JarvisError
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.repository.set_records import record_relpath
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text
from tests.support.s3_hosts import BUCKET, s3_settings
from tests.support.s3_prefix import delete_set, listing, s3_copy, unreachable_endpoint
from tests.support.s3_proxy import FORWARD, HangUp, Request, S3Proxy


@pytest.fixture
def env(tmp_path, isolated_env, s3_server) -> FilesEnv:
    s3_server.create_bucket(BUCKET)
    env = make_files_env(tmp_path / "host")
    # One set a day is kept: of three made today, the two older ones go.
    env.set(
        **s3_settings(s3_server),
        BACKUP_RETENTION_DAILY="1",
        BACKUP_RETENTION_WEEKLY="0",
        BACKUP_RETENTION_MONTHLY="0",
    )
    return env


def backups(env: FilesEnv, count: int) -> list[str]:
    order = []
    for number in range(count):
        (env.data / f"f{number}.txt").write_bytes(random_text(60_000, number))
        assert env.cli("backup", "files") == ExitCode.OK
        with env.workspace() as workspace:
            order.append(workspace.catalog.get_backup_set("latest").id)
    return order


def set_keys(env: FilesEnv, set_id: str) -> set[str]:
    with env.workspace() as workspace:
        relpaths = [a.relpath for a in workspace.catalog.artifacts_of(set_id)]
    return {*relpaths, *(r + SIDECAR_SUFFIX for r in relpaths), record_relpath(set_id)}


def unfinished_line(out: str, verb: str) -> set[str]:
    """The sets cleanup's output says it finishes (or would) before retention."""
    (line,) = [x for x in out.splitlines() if "whose deletion began earlier" in x]
    head, _, ids = line.partition(": ")
    assert head.endswith(f"whose deletion began earlier {verb}"), line
    return set(ids.split(", "))


def copies_of_set(env: FilesEnv, set_id: str) -> dict[str, tuple[str, str | None]]:
    """{destination: (state, error)} of the set's one artifact."""
    with env.workspace() as workspace:
        (artifact,) = workspace.catalog.artifacts_of(set_id)
        return {c.destination: (c.state, c.error) for c in workspace.catalog.copies_of(artifact.id)}


def test_cleanup_with_s3_unreachable_records_the_truth_and_the_next_one_finishes(
    env, s3_server, capsys
):
    oldest, middle, newest = backups(env, 3)
    keys = {set_id: set_keys(env, set_id) for set_id in (oldest, middle, newest)}
    s3 = s3_copy(s3_server)
    before = listing(s3)
    assert all(keys[s] <= before.keys() for s in keys)

    with unreachable_endpoint() as nowhere:
        env.set(S3_ENDPOINT_URL=nowhere)
        # The operator deletes the newest set, which retention would always keep.
        with pytest.raises(JarvisError, match=rf"{newest} is still listed: .*not deleted yet"):
            delete_set(env, newest)
        capsys.readouterr()
        assert env.cli("cleanup") == ExitCode.FAILED
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        assert f"problem: {oldest}: its copies on s3 are not deleted yet (S3 bucket" in err
        assert "the next cleanup finishes it" in err

    here = listing(LocalRepository(env.repo))
    with env.workspace() as workspace:
        catalog = workspace.catalog
        assert set(catalog.sets_being_deleted()) == {oldest, newest}
        assert {s.id for s in catalog.list_backup_sets()} == {oldest, middle, newest}
        assert catalog.get_backup_set("latest").id == middle  # never a set half deleted
        listed = {s.id: s.deleting_since for s in catalog.list_backup_sets()}
        assert listed[middle] is None
        assert listed[oldest] == catalog.sets_being_deleted()[oldest] is not None
    for set_id in (oldest, newest):
        copies = copies_of_set(env, set_id)
        assert copies["local"] == ("deleted", None)
        state, error = copies["s3"]
        assert state == "stored" and error.startswith("not deleted yet: S3 bucket")
        assert s3_server.secret_key not in error
        artifacts = keys[set_id] - {record_relpath(set_id)}
        assert not artifacts & here.keys()  # gone from the repository ...
        assert keys[set_id] <= listing(s3).keys()  # ... and all still on S3
    assert copies_of_set(env, middle) == {"local": ("stored", None), "s3": ("stored", None)}
    assert listing(s3) == before  # nothing at all was deleted there
    assert env.cli("verify", "--all") == ExitCode.OK  # what is left here is whole

    # S3 is back: the next cleanup finishes both, though retention keeps the newest set.
    env.set(S3_ENDPOINT_URL=s3_server.endpoint_url)
    assert env.cli("cleanup", "--dry-run") == ExitCode.OK
    out = capsys.readouterr().out
    assert unfinished_line(out, "would be finished") == {oldest, newest}
    assert "dry run: 0 set(s) would be deleted" in out
    assert env.cli("cleanup") == ExitCode.OK
    out = capsys.readouterr().out
    assert unfinished_line(out, "finished first") == {oldest, newest}
    assert "2 set(s) deleted" in out
    with env.workspace() as workspace:
        assert workspace.catalog.sets_being_deleted() == {}
        assert {s.id for s in workspace.catalog.list_backup_sets()} == {middle}
    left = listing(s3)
    assert not (keys[oldest] | keys[newest]) & left.keys()
    assert keys[middle] <= left.keys()
    assert left == listing(LocalRepository(env.repo))  # pruned there too


class _DeletesThenSilence(S3Proxy):
    """A loopback proxy to moto that lets `allowed` object deletions through, then stops
    answering anything: S3 lost in the middle of a cleanup."""

    def __init__(self, upstream_url: str, allowed: int) -> None:
        self._left = allowed
        self._lock = threading.Lock()
        super().__init__(upstream_url)

    def decide(self, request: Request) -> HangUp | None:
        with self._lock:
            if self._left <= 0:
                return HangUp()  # no answer at all
            if request.method == "DELETE" and ".s3-lock" not in request.path:
                self._left -= 1
        return FORWARD


def test_s3_lost_in_the_middle_of_a_cleanup_leaves_each_copy_recorded_as_it_is(
    env, s3_server, capsys
):
    """Two sets to delete; S3 answers the first one's two deletions (artifact, sidecar),
    then nothing: that copy is deleted there, the other still stored there, both sets
    stay listed (the first one's record is still on S3); the cleanup process's lock is
    taken over at once by the next one, which finishes both."""
    oldest, middle, newest = backups(env, 3)
    keys = {set_id: set_keys(env, set_id) for set_id in (oldest, middle)}
    s3 = s3_copy(s3_server)
    with _DeletesThenSilence(s3_server.endpoint_url, allowed=2) as proxy:
        env.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        done = env.cli_process("cleanup")  # its own process: its lock release is lost too
    assert done.returncode == ExitCode.FAILED, done.stderr
    assert "Traceback" not in done.stderr
    with env.workspace() as workspace:
        assert set(workspace.catalog.sets_being_deleted()) == {oldest, middle}
    states = {set_id: copies_of_set(env, set_id) for set_id in (oldest, middle)}
    first = next(s for s in states if states[s]["s3"][0] == "deleted")
    second = middle if first == oldest else oldest
    assert states[first] == {"local": ("deleted", None), "s3": ("deleted", None)}
    assert states[second]["local"] == ("deleted", None)
    assert states[second]["s3"][0] == "stored"
    assert states[second]["s3"][1].startswith("not deleted yet: ")
    there = listing(s3).keys()
    assert keys[first] & there == {record_relpath(first)}  # the record goes last
    assert keys[second] <= there

    env.set(S3_ENDPOINT_URL=s3_server.endpoint_url)
    done = env.cli_process("cleanup")
    assert done.returncode == ExitCode.OK, done.stderr
    with env.workspace() as workspace:
        assert {s.id for s in workspace.catalog.list_backup_sets()} == {newest}
    assert not (keys[first] | keys[second]) & listing(s3).keys()
    assert listing(s3) == listing(LocalRepository(env.repo))
