"""rekey seals archived WAL again (issue #16): a real cluster's archive (wal-push as
PostgreSQL's account, tests/test_pitr_archive.py's fixture) and its copy on S3, sealed
again under the new key and fetched back identical with the new key alone; a rekey
killed (kill -9) mid-way through S3, or kept from writing there, leaves every file
readable under one key or the other, and the next run finishes; WAL pushed meanwhile."""

import io
import os
import signal
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from engines.pipeline.crypto import MasterKey, generate_key_hex, read_header
from tests.support.processes import wait_until
from tests.support.s3 import S3Server
from tests.support.s3_faults import FaultyS3Proxy
from tests.support.s3_proxy import HangUp, Request
from tests.test_pitr_archive import JARVIS, Archive, _s3_env, _switch, archive  # noqa: F401

BUCKET = "jarvis-rekey-wal"


def _key(archive: Archive) -> str:  # noqa: F811
    text = archive.env_file.read_text()
    return next(
        line.split("=", 1)[1] for line in text.splitlines()
        if line.startswith("BACKUP_ENCRYPTION_KEY=")
    )  # fmt: skip


def _with_keys(settings: str, current: str, previous: str | None) -> str:
    lines = [
        line for line in settings.splitlines()
        if not line.startswith(("BACKUP_ENCRYPTION_KEY=", "BACKUP_ENCRYPTION_KEY_PREVIOUS="))
    ]  # fmt: skip
    lines.append(f"BACKUP_ENCRYPTION_KEY={current}")
    if previous:
        lines.append(f"BACKUP_ENCRYPTION_KEY_PREVIOUS={previous}")
    return "\n".join(lines) + "\n"


def _rotate(archive: Archive) -> tuple[str, str]:  # noqa: F811
    """A new key in the archiver's own env file (the old one kept as the previous):
    (old, new)."""
    old, new = _key(archive), generate_key_hex()
    archive.env_file.write_text(_with_keys(archive.env_file.read_text(), new, old))
    return old, new


def _key_id(hex_key: str) -> str:
    return MasterKey.from_hex(hex_key).key_id


def _repository_key_ids(archive: Archive) -> dict[str, str]:  # noqa: F811
    return {
        path.relative_to(archive.repository).as_posix(): _header_key_id(path.read_bytes())
        for path in (archive.repository / "wal").rglob("*.enc")
    }


def _s3_key_ids(s3_server: S3Server) -> dict[str, str]:
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="wal/").get("Contents", [])
    return {
        item["Key"]: _header_key_id(
            client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        )
        for item in listed
    }


def _header_key_id(data: bytes) -> str:
    return read_header(io.BytesIO(data), "wal")[0].key_id


def _segments(archive: Archive) -> list[str]:  # noqa: F811
    return sorted(name for name in archive.stored() if len(name) == 24)


def _fetch_all(
    archive: Archive,  # noqa: F811
    env_file: Path,
    pgdata: Path,
    names: Iterable[str] | None = None,
) -> dict[str, bytes]:
    """Every archived segment fetched as recovery would, into `pgdata`/pg_wal (its
    pg_control names the cluster, so a copy without the repository's record serves)."""
    (system_id,) = {p.parent.parent.name for p in archive.stored().values()}
    (pgdata / "global").mkdir(parents=True, exist_ok=True)
    (pgdata / "global" / "pg_control").write_bytes(struct.pack("<Q", int(system_id)))
    into = pgdata / "pg_wal"
    into.mkdir(exist_ok=True)
    found = {}
    for name in _segments(archive) if names is None else names:
        result = archive.cli("wal-fetch", name, str(into / name), env_file=env_file)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        found[name] = (into / name).read_bytes()
    return found


def _new_key_only(archive: Archive, tmp_path: Path, new: str, s3_url: str) -> tuple[Path, Path]:  # noqa: F811
    """Env files holding the new key alone: one reading the repository, one reading only
    the S3 copy (its repository an empty folder)."""
    settings = _with_keys(archive.env_file.read_text(), new, None)
    local = tmp_path / "new-only.env"
    local.write_text(settings)
    empty = tmp_path / "empty-repository"
    empty.mkdir(exist_ok=True)
    remote = _s3_env(archive, tmp_path, empty, BUCKET, s3_url)
    remote.write_text(_with_keys(remote.read_text(), new, None))
    return local, remote


@pytest.fixture(scope="module")
def originals(archive: Archive, tmp_path_factory) -> dict[str, bytes]:  # noqa: F811
    for _ in range(4):
        _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    return _fetch_all(archive, archive.env_file, tmp_path_factory.mktemp("originals"))


def _copy_to_s3(archive: Archive, s3_server: S3Server) -> None:  # noqa: F811
    client = s3_server.client()
    for path in (archive.repository / "wal").rglob("*.enc"):
        key = path.relative_to(archive.repository).as_posix()
        client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())


def test_rekey_seals_the_archived_wal_again_on_the_repository_and_s3(
    archive: Archive,  # noqa: F811
    originals: dict[str, bytes],
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    _copy_to_s3(archive, s3_server)
    old, new = _rotate(archive)
    before = {
        path: path.stat() for path in (archive.repository / "wal").rglob("*.enc")
    }  # fmt: skip
    s3_env = _s3_env(archive, tmp_path, archive.repository, BUCKET, s3_server.endpoint_url)
    dry = archive.cli("rekey", "--dry-run", env_file=s3_env)
    assert dry.returncode == 0, dry.stderr
    assert f"would seal again  wal/cluster.zst.enc on {'s3'}" in dry.stdout
    assert set(_repository_key_ids(archive).values()) == {_key_id(old)}  # nothing changed

    result = archive.cli("rekey", env_file=s3_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing needs an old key any more" in result.stdout
    resealed = [line for line in result.stdout.splitlines() if "sealed again  wal/" in line]
    assert len(resealed) == 2 * len(before)  # each file, on the repository and on S3
    assert set(_repository_key_ids(archive).values()) == {_key_id(new)}
    s3_ids = _s3_key_ids(s3_server)
    assert len(s3_ids) == len(before) and set(s3_ids.values()) == {_key_id(new)}
    for path, was in before.items():  # same owner (PostgreSQL's account), mode and time
        now = path.stat()
        assert (now.st_uid, now.st_mode, now.st_mtime_ns) == (
            was.st_uid, was.st_mode, was.st_mtime_ns
        )  # fmt: skip

    local, remote = _new_key_only(archive, tmp_path, new, s3_server.endpoint_url)
    assert _fetch_all(archive, local, tmp_path / "from-repository") == originals
    assert _fetch_all(archive, remote, tmp_path / "from-s3", originals) == originals
    # The archiver goes on, under the new key (its env file has it).
    name = _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    assert _repository_key_ids(archive)[next(
        key for key in _repository_key_ids(archive) if name in key
    )] == _key_id(new)  # fmt: skip


class StallAfterPuts(FaultyS3Proxy):
    """Lets `allowed` uploads of archived WAL through, then holds the next ones."""

    allowed = 2

    def decide(self, request: Request):
        if request.method == "PUT" and "/wal/" in request.path:
            with self._lock:
                self.requests["wal PUT"] += 1
                if self.requests["wal PUT"] > self.allowed and not self._healed.is_set():
                    self.served["stall"] += 1
                    return HangUp(read=0.0, until=self._healed)
        return super().decide(request)


def test_a_rekey_killed_or_refused_on_s3_is_finished_by_the_next_run(
    archive: Archive,  # noqa: F811
    originals: dict[str, bytes],
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    _copy_to_s3(archive, s3_server)
    old, new = _rotate(archive)
    files = len(_s3_key_ids(s3_server))
    assert files >= len(originals) and set(_s3_key_ids(s3_server).values()) == {_key_id(old)}
    with StallAfterPuts(s3_server.endpoint_url) as proxy:
        s3_env = _s3_env(archive, tmp_path, archive.repository, BUCKET, proxy.endpoint_url)
        # S3 refuses every write (a read-only destination): the repository is sealed
        # again, S3 keeps its files under the old key, named, exit 1.
        proxy.fail(float("inf"), status=403, code="AccessDenied", methods=("PUT",))
        refused = archive.cli("rekey", env_file=s3_env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "WAL on s3: not all sealed again" in refused.stderr
        assert f"still under an old key: {files} archived WAL file(s)" in refused.stdout
        assert "can be removed" not in refused.stdout
        assert set(_repository_key_ids(archive).values()) == {_key_id(new)}
        assert set(_s3_key_ids(s3_server).values()) == {_key_id(old)}

        # Killed (kill -9) while S3 is half done: two files sealed again, the third held.
        proxy.heal()
        proxy._healed.clear()  # StallAfterPuts holds while not healed
        proxy.requests["wal PUT"] = 0
        killed = subprocess.Popen(
            [JARVIS, "--env-file", str(s3_env), "rekey"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=archive.root,
        )  # fmt: skip
        try:
            wait_until(lambda: proxy.served["stall"] >= 1, 120, "rekey to reach the third PUT")
            # A segment the archiver pushes meanwhile is sealed under the new key.
            name = _switch(archive)
            checked = archive.cli("pitr", "check")
            assert checked.returncode == 0, archive.pg.log_path.read_text()[-3000:]
            repository_ids = _repository_key_ids(archive)
            assert {v for k, v in repository_ids.items() if name in k} == {_key_id(new)}
        finally:
            os.kill(killed.pid, signal.SIGKILL)
            killed.wait(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        proxy.heal()
        s3_ids = _s3_key_ids(s3_server)
        assert sorted(s3_ids.values()).count(_key_id(new)) == StallAfterPuts.allowed
        assert set(s3_ids.values()) == {_key_id(old), _key_id(new)}
        # wal-fetch reads every segment, from the repository and from S3 alone.
        both = tmp_path / "both-keys-s3.env"
        empty = tmp_path / "empty"
        empty.mkdir()
        both.write_text(s3_env.read_text().replace(str(archive.repository), str(empty)))
        fetched = _fetch_all(archive, archive.env_file, tmp_path / "a")
        assert {k: v for k, v in fetched.items() if k in originals} == originals
        assert _fetch_all(archive, both, tmp_path / "b", originals) == originals

        # A stale archiver, its env file still naming the old key as the current one: with
        # the old key alone it stops loudly (the archive's record is under the new key, and
        # PostgreSQL keeps the segment); given the new key as a previous one it pushes
        # under the old key, which the next run seals again.
        segment = sorted(originals)[-1]
        (stored,) = [p for p in (archive.repository / "wal").rglob(f"{segment}.*")]
        stored.unlink()
        pg_wal = tmp_path / "stale" / "pg_wal"
        pg_wal.mkdir(parents=True)
        (pg_wal / segment).write_bytes(originals[segment])
        alone = tmp_path / "old-alone.env"
        alone.write_text(_with_keys(archive.env_file.read_text(), old, None))
        refused = archive.cli("wal-push", str(pg_wal / segment), env_file=alone)
        assert refused.returncode == 5 and _key_id(new) in refused.stderr, refused.stderr
        assert not stored.exists()
        stale = tmp_path / "stale.env"
        stale.write_text(_with_keys(archive.env_file.read_text(), old, new))
        pushed = archive.cli("wal-push", str(pg_wal / segment), env_file=stale)
        assert pushed.returncode == 0, pushed.stderr
        assert _header_key_id(stored.read_bytes()) == _key_id(old)

        again = archive.cli("rekey", env_file=s3_env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "nothing needs an old key any more" in again.stdout
    assert set(_repository_key_ids(archive).values()) == {_key_id(new)}
    assert set(_s3_key_ids(s3_server).values()) == {_key_id(new)}
    local, remote = _new_key_only(archive, tmp_path, new, s3_server.endpoint_url)
    fetched = _fetch_all(archive, local, tmp_path / "c")
    assert {k: v for k, v in fetched.items() if k in originals} == originals
    assert _fetch_all(archive, remote, tmp_path / "d", originals) == originals  # new key only
