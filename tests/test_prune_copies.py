"""Prune on S3: after the repository's prune, the copy under S3_PREFIX drops only what no
snapshot stored there references, and every snapshot left there still restores.

Real files backups copied to moto's S3 over HTTP on loopback, the real CLI.
"""

import pytest

from engines.destinations import LocalRepository
from engines.destinations.s3_lock import LOCK_KEY
from engines.errors import JarvisError
from engines.store.layout import INDEX_PREFIX, PACKS_PREFIX, is_snapshot_key
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text, tree_of
from tests.support.s3_hosts import BUCKET, PREFIX, s3_settings
from tests.support.s3_prefix import (
    bucket_keys,
    delete_set,
    download_prefix,
    listing,
    s3_copy,
    unreachable_endpoint,
)


@pytest.fixture
def env(tmp_path, isolated_env, s3_server) -> FilesEnv:
    s3_server.create_bucket(BUCKET)
    env = make_files_env(tmp_path / "host")
    env.set(**s3_settings(s3_server))
    return env


def three_backups(env: FilesEnv) -> tuple[list[str], dict[str, dict]]:
    """Three files backups (their set ids, oldest first) with the tree each one saw. The
    first one's `gone.txt` shares its pack with `kept.txt`, which the later ones keep."""
    order, trees = [], {}
    (env.data / "kept.txt").write_bytes(random_text(900_000, 1))
    (env.data / "gone.txt").write_bytes(random_text(900_000, 2))
    for step in range(3):
        if step == 1:
            (env.data / "gone.txt").unlink()
            (env.data / "mid.txt").write_bytes(random_text(600_000, 3))
        if step == 2:
            (env.data / "last.txt").write_bytes(random_text(300_000, 4))
        assert env.cli("backup", "files") == ExitCode.OK
        with env.workspace() as workspace:
            order.append(workspace.catalog.get_backup_set("latest").id)
        trees[order[-1]] = tree_of(env.data)
    return order, trees


def test_prune_deletes_on_s3_only_what_no_snapshot_there_references_and_the_rest_restores(
    env, s3_server, capsys, tmp_path
):
    (first, *kept), trees = three_backups(env)
    delete_set(env, first)  # its manifest goes from both; its data waits for prune
    s3 = s3_copy(s3_server)
    before = listing(s3)
    assert before == listing(LocalRepository(env.repo))

    # S3 unreachable: the repository is pruned, the copy is not, and the exit says so.
    with unreachable_endpoint() as nowhere:
        env.set(S3_ENDPOINT_URL=nowhere)
        capsys.readouterr()
        assert env.cli("prune") == ExitCode.FAILED
        out, err = capsys.readouterr()
        assert "repacked 1" in out  # the pack gone.txt shared with kept.txt
        assert f"prune s3: not pruned: S3 bucket {BUCKET}: taking the lock" in err
    env.set(S3_ENDPOINT_URL=s3_server.endpoint_url)
    assert listing(s3) == before

    assert env.cli("sync") == ExitCode.OK  # the new pack and index go up
    synced = listing(s3)
    capsys.readouterr()

    assert env.cli("prune", "--dry-run") == ExitCode.OK
    foreseen = capsys.readouterr().out
    assert listing(s3) == synced
    assert env.cli("prune") == ExitCode.OK
    out = capsys.readouterr().out
    here = listing(LocalRepository(env.repo))
    assert listing(s3) == here  # the copy mirrors the repository again
    # What went there: every index file before this prune's, and the pack the first
    # prune repacked, which no snapshot there references any more; nothing else.
    deleted = synced.keys() - here.keys()
    index_files = sorted(k for k in deleted if k.startswith(INDEX_PREFIX))
    packs = sorted(k for k in deleted if k.startswith(PACKS_PREFIX))
    assert sorted(deleted) == index_files + packs and len(packs) == 1
    assert index_files == sorted(k for k in synced if k.startswith(INDEX_PREFIX))
    words = (
        f"2 snapshot(s) there; {{}} {len(index_files)} index file(s) and {len(packs)} "
        f"pack(s), {sum(synced[k] for k in deleted)} bytes"
    )
    assert "prune s3: " + words.format("would delete") in foreseen
    assert "prune s3: " + words.format("deleted") in out
    assert LOCK_KEY not in bucket_keys(s3_server)  # released

    # A fresh host with only the bucket's copy and the key: every snapshot left restores.
    mirror = make_files_env(tmp_path / "fresh")
    download_prefix(s3_server, mirror.repo)
    assert mirror.cli("catalog", "rebuild") == ExitCode.OK
    for set_id in kept:
        assert mirror.cli("verify", set_id, "--read-data") == ExitCode.OK
        target = tmp_path / "restored" / set_id
        assert mirror.cli("restore", "files", set_id, "--target-dir", str(target)) == ExitCode.OK
        assert tree_of(target / str(env.data).lstrip("/")) == trees[set_id]


def test_a_snapshot_s3_still_holds_keeps_its_packs_until_its_set_is_deleted_there(
    env, s3_server, capsys, tmp_path
):
    """A set deleted while S3 was unreachable is gone here but not there: prune keeps on
    S3 every pack holding its chunks (read from the packs' trailers, since the copied new
    index no longer lists them); the next cleanup deletes the set there, then its data."""
    first = three_backups(env)[0][0]
    with unreachable_endpoint() as nowhere:
        env.set(S3_ENDPOINT_URL=nowhere)
        with pytest.raises(JarvisError, match=r"not deleted yet"):
            delete_set(env, first)
    env.set(S3_ENDPOINT_URL=s3_server.endpoint_url)
    s3 = s3_copy(s3_server)
    before = listing(s3)
    its_snapshot = [k for k in before if k.startswith(f"files/{first}_snapshot")]
    assert its_snapshot  # still there
    capsys.readouterr()

    assert env.cli("prune") == ExitCode.OK
    out = capsys.readouterr().out
    assert "repacked 1" in out
    assert "prune s3: 3 snapshot(s) there; deleted 0 index file(s) and 0 pack(s)" in out
    after = listing(s3)
    old_packs = {k for k in before if k.startswith(PACKS_PREFIX)}
    repacked = old_packs - listing(LocalRepository(env.repo)).keys()
    assert repacked and old_packs <= after.keys()  # the pack repacked here stays there

    assert env.cli("cleanup") == ExitCode.OK
    out = capsys.readouterr().out
    with env.workspace() as workspace:
        left = {s.id for s in workspace.catalog.list_backup_sets()}
        assert workspace.catalog.sets_being_deleted() == {}
    assert first not in left  # finished first, then retention (one set a day) had its say
    assert listing(s3) == listing(LocalRepository(env.repo))
    assert f"files on s3: {len(left)} snapshot(s) there; deleted" in out
    assert not repacked & listing(s3).keys()


def test_a_snapshot_on_s3_that_does_not_authenticate_stops_the_prune_there(env, s3_server, capsys):
    """Nothing is taken on trust: a snapshot there altered (same size, so a copy does not
    resend it) cannot say what it references, so nothing is deleted there."""
    order, _ = three_backups(env)
    delete_set(env, order[0])
    s3 = s3_copy(s3_server)
    (snapshot,) = [k for k in listing(s3) if is_snapshot_key(k) and order[-1] in k]
    client = s3_server.client()
    key = f"{PREFIX}/{snapshot}"
    body = bytearray(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    before = listing(s3)
    capsys.readouterr()

    assert env.cli("prune") == ExitCode.FAILED
    out, err = capsys.readouterr()
    assert "repacked 1" in out  # the repository's own prune went ahead
    assert f"prune s3: not pruned: cannot read snapshot {snapshot} on s3 (" in err
    assert "nothing was deleted there" in err and "Traceback" not in err
    assert before.keys() <= listing(s3).keys()
