"""S3 when things go wrong, against moto's server behind a loopback proxy that misbehaves
on request (tests/support/s3_faults.py): transient 503 SlowDown and 500 InternalError,
connections dropped mid-upload and mid-download, persistent failures, a server that
echoes the credentials back in its error bodies, and one that stops answering.

Uploads go through botocore's retries; what still fails is recorded as a failed copy
with the "S3 upload failure" alert while the local backup stays whole, and a later
`sync` completes it; a broken download resumes with a range and what it read
authenticates; no credential leaves the process; every call ends in bounded time.
"""

import base64
import hashlib
import math
import os
import time
from pathlib import Path

import pytest

from engines.destinations import LocalRepository
from engines.destinations.s3 import S3Destination, S3Error
from engines.destinations.s3_client import Limits
from engines.pipeline.artifacts import verify_artifact
from engines.repository.copies import ALERT_WORDS, alert_kind
from engines.repository.resolve import expected_for
from engines.repository.stored import stored_bytes
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text
from tests.support.s3 import S3Server
from tests.support.s3_faults import FaultyS3Proxy, without_retry_waits

MiB = 1024 * 1024
BUCKET = "jarvis-faults"
PREFIX = "hosts/jarvis-1"
# moto accepts any key: these travel in every request and must never come back out.
ACCESS_KEY = "AKIAJARVISFAULTS0001"
SECRET_KEY = "jarvis-faults-secret-0123456789abcdefghijkl"


@pytest.fixture
def proxy(s3_server: S3Server, monkeypatch):
    without_retry_waits(monkeypatch)
    s3_server.create_bucket(BUCKET)
    with FaultyS3Proxy(s3_server.endpoint_url, echo=f"{SECRET_KEY} {ACCESS_KEY}") as proxy:
        yield proxy


def _destination(proxy: FaultyS3Proxy, tmp_path: Path, **options) -> S3Destination:
    return S3Destination(
        BUCKET,
        prefix=PREFIX,
        region=S3Server.region,
        endpoint_url=proxy.endpoint_url,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        spool_dir=tmp_path / "spool",
        **options,
    )


def _stored(s3_server: S3Server, key: str) -> bytes:
    return s3_server.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read()


def _files_env(tmp_path: Path, proxy: FaultyS3Proxy) -> FilesEnv:
    env = make_files_env(tmp_path / "files")
    for number in range(5):
        (env.data / f"f{number}.txt").write_bytes(random_text(40_000, number))
    env.set(
        S3_ENABLED="true",
        S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=proxy.endpoint_url,
        S3_ACCESS_KEY=ACCESS_KEY,
        S3_SECRET_KEY=SECRET_KEY,
        AWS_REGION=S3Server.region,
        S3_PREFIX=PREFIX,
    )
    return env


def _copy_states(env: FilesEnv) -> dict[str, str | None]:
    with env.workspace() as workspace:
        found = {}
        for artifact in workspace.catalog.all_artifacts():
            states = {c.destination: c.state for c in workspace.catalog.copies_of(artifact.id)}
            found[artifact.relpath] = states.get("s3")
        return found


def test_uploads_go_through_transient_slowdowns_errors_and_dropped_connections(
    s3_server: S3Server, proxy: FaultyS3Proxy, tmp_path
):
    destination = _destination(proxy, tmp_path, multipart_size=5 * MiB)
    small = b"a small dump" * 100
    proxy.fail(2, 503, "SlowDown")
    with destination.open_write("postgres/small.gz.enc") as output:
        output.write(small)
    assert proxy.served["SlowDown"] == 2
    assert _stored(s3_server, "postgres/small.gz.enc") == small

    large = os.urandom(12 * MiB + 5)
    source = tmp_path / "large"
    source.write_bytes(large)
    proxy.fail(2, 500, "InternalError")
    destination.put(source, "files/packs/aa/large")
    assert proxy.served["InternalError"] == 2
    proxy.drop_uploads(2)
    destination.put(source, "files/packs/aa/dropped")
    assert proxy.served["dropped upload"] == 2
    # About a third of the writes answered SlowDown, the same ones in every run.
    proxy.fail_fraction(0.3, seed=7)
    before = proxy.served["SlowDown"]
    destination.put(source, "files/packs/aa/flaky")
    assert proxy.served["SlowDown"] > before
    proxy.heal()
    for key in ("files/packs/aa/large", "files/packs/aa/dropped", "files/packs/aa/flaky"):
        assert _stored(s3_server, key) == large, key
    head = s3_server.client().head_object(
        Bucket=BUCKET, Key=f"{PREFIX}/files/packs/aa/flaky", ChecksumMode="ENABLED"
    )
    parts = [hashlib.sha256(large[i : i + 5 * MiB]).digest() for i in range(0, len(large), 5 * MiB)]
    composite = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    assert head["ChecksumSHA256"].partition("-")[0] == composite
    uploads = s3_server.client().list_multipart_uploads(Bucket=BUCKET)
    assert not uploads.get("Uploads")  # no part left behind by a retried upload


def test_persistent_failures_are_recorded_alerted_and_a_later_sync_completes(
    s3_server: S3Server, proxy: FaultyS3Proxy, tmp_path, isolated_env, capsys
):
    env = _files_env(tmp_path, proxy)
    proxy.fail(math.inf, 503, "SlowDown")
    assert env.cli("backup", "files") == ExitCode.OK
    output = capsys.readouterr()
    assert proxy.served["SlowDown"] >= 4  # the first upload, tried four times
    assert set(_copy_states(env).values()) == {"failed"}
    with env.workspace() as workspace:
        [alert] = workspace.catalog.open_conditions(alert_kind("s3"))
        assert alert.message.startswith(f"{ALERT_WORDS}: s3: copy failed at ")
        assert "SlowDown" in alert.message
        (artifact,) = workspace.catalog.all_artifacts()
        [copy] = [c for c in workspace.catalog.copies_of(artifact.id) if c.destination == "s3"]
        assert "SlowDown" in copy.error
    logged = "".join(path.read_text() for path in (env.root / "logs").rglob("*") if path.is_file())
    assert "the backups stay stored locally; `jarvis-tui sync` retries" in logged
    assert "snapshot files_" in output.out
    assert s3_server.client().list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert env.cli("verify", "--all") == ExitCode.OK  # the local copies are whole

    # Still failing: sync says so and exits non-zero, nothing is marked stored.
    capsys.readouterr()
    assert env.cli("sync") != ExitCode.OK
    assert "copy failed at" in capsys.readouterr().out
    assert set(_copy_states(env).values()) == {"failed"}

    proxy.heal()
    here = {item.key: item.size for item in LocalRepository(env.repo).list()}
    assert env.cli("sync") == ExitCode.OK
    assert f"s3: copied {len(here)} object(s)" in capsys.readouterr().out
    assert set(_copy_states(env).values()) == {"stored"}
    with env.workspace() as workspace:
        assert workspace.catalog.open_conditions(alert_kind("s3")) == []
    for key in here:
        assert _stored(s3_server, key) == (env.repo / key).read_bytes(), key


def test_a_download_dropped_mid_stream_resumes_and_the_bytes_authenticate(
    s3_server: S3Server, proxy: FaultyS3Proxy, tmp_path, isolated_env
):
    env = _files_env(tmp_path, proxy)
    assert env.cli("backup", "files") == ExitCode.OK
    assert set(_copy_states(env).values()) == {"stored"}
    with env.workspace() as workspace:
        destination = S3Destination.from_settings(workspace.settings)
        relpaths = [a.relpath for a in workspace.catalog.all_artifacts()]
        for relpath in relpaths:
            proxy.drop_downloads(2)
            cut = proxy.served["dropped download"]
            report = verify_artifact(
                stored_bytes(destination, relpath),
                workspace.keyring(),
                expected=expected_for(workspace, relpath),
            )
            assert report.ok, report.problems
            assert proxy.served["dropped download"] == cut + 2  # both were cut, and resumed

    # A large object read whole: one streaming GET, cut three times, resumed each time.
    content = os.urandom(9 * MiB + 1)
    destination = _destination(proxy, tmp_path)
    source = tmp_path / "large"
    source.write_bytes(content)
    destination.put(source, "files/packs/bb/large")
    proxy.drop_downloads(3)
    with destination.open_read("files/packs/bb/large") as handle:
        assert handle.read(100) == content[:100]
        assert handle.read() == content[100:]
    assert proxy.served["dropped download"] == 2 * len(relpaths) + 3
    proxy.drop_downloads(3)
    destination.get("files/packs/bb/large", tmp_path / "got")  # s3transfer's ranged retries
    assert (tmp_path / "got").read_bytes() == content


def test_credentials_never_appear_even_when_the_server_echoes_them(
    s3_server: S3Server, proxy: FaultyS3Proxy, tmp_path, isolated_env, capsys
):
    env = _files_env(tmp_path, proxy)
    proxy.fail(math.inf, 403, "AccessDenied", methods=("PUT", "POST", "GET", "HEAD"))
    assert env.cli("backup", "files") == ExitCode.OK
    assert env.cli("sync") != ExitCode.OK
    assert env.cli("health") != ExitCode.OK
    proxy.fail(math.inf, 500, "InternalError")
    assert env.cli("sync") != ExitCode.OK
    captured = capsys.readouterr()
    process = env.cli_process("sync")
    assert process.returncode != 0

    destination = _destination(proxy, tmp_path)
    with pytest.raises(S3Error) as caught, destination.open_write("postgres/a.gz.enc") as out:
        out.write(b"a dump")
    echoed = proxy.served["InternalError"] + proxy.served["AccessDenied"]
    assert echoed > 0
    texts = {
        "output": captured.out + captured.err,
        "process output": process.stdout + process.stderr,
        "exception": f"{caught.value} {caught.value!r} {caught.value.args}",
    }
    assert "InternalError" in texts["exception"]  # the server's answer is named
    assert "AccessDenied" in texts["output"]
    for path in sorted(env.root.rglob("*")):
        if path.is_file() and path != env.env_file and env.data not in path.parents:
            texts[str(path)] = path.read_bytes().decode("latin-1")
    assert any("catalog" in name for name in texts) and any("logs" in name for name in texts)
    for where, text in texts.items():
        assert SECRET_KEY not in text, where
        assert ACCESS_KEY not in text, where


@pytest.mark.parametrize("doing", ["write", "read", "list", "probe"])
def test_a_server_that_stops_answering_gives_a_timeout_line_not_a_hang(
    s3_server: S3Server, proxy: FaultyS3Proxy, tmp_path, doing
):
    destination = _destination(proxy, tmp_path, limits=Limits(connect_s=1, read_s=1, attempts=2))
    (tmp_path / "object").write_bytes(b"wal segment")
    destination.put(tmp_path / "object", "wal/0001")
    proxy.stall()
    started = time.monotonic()
    if doing == "probe":
        [problem] = destination.probe()
    else:
        with pytest.raises(S3Error) as caught:
            if doing == "write":
                destination.put(tmp_path / "object", "wal/0002")
            elif doing == "read":
                destination.open_read("wal/0001").read()
            else:
                list(destination.list())
        problem = str(caught.value)
    elapsed = time.monotonic() - started
    proxy.heal()
    assert elapsed < 30, f"{doing} took {elapsed:.0f}s"
    assert BUCKET in problem and "did not answer in 1s, try again later" in problem
    assert "\n" not in problem and SECRET_KEY not in problem and ACCESS_KEY not in problem
