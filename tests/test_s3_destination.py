"""What only the S3 destination has, against moto's server over HTTP on loopback: multipart
uploads, the checksum confirmation, storage class and encryption reaching the object, the
archive classes explained, and credentials kept out of every error. What every
destination does is in tests/test_destination_contract.py."""

import base64
import hashlib
import os
from pathlib import Path

import pytest

from engines.config import load_settings
from engines.destinations import copy_destinations
from engines.destinations.s3 import ArchivedObjectError, S3Destination, S3Error
from engines.errors import JarvisError
from tests.support.s3 import S3Server
from tests.support.s3_faults import without_retry_waits
from tests.support.s3_read_only import ReadOnlyS3Proxy

MiB = 1024 * 1024
# Distinct from the server's own "testing": moto accepts any key, so these travel in
# every request and must never come back in an error.
ACCESS_KEY = "AKIAJARVISTESTKEY0001"
SECRET_KEY = "jarvis-secret-key-0123456789abcdefghijklmn"


def _settings(server: S3Server, bucket: str, **extra: str):
    return load_settings(
        {
            "S3_ENABLED": "true",
            "S3_BUCKET": bucket,
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": SECRET_KEY,
            "S3_ENDPOINT_URL": server.endpoint_url,
            "AWS_REGION": server.region,
            "S3_PREFIX": "hosts/web-1/",
            **extra,
        },
        None,
    )


def _destination(server: S3Server, bucket: str, tmp_path: Path, **options) -> S3Destination:
    return S3Destination(
        bucket,
        prefix="hosts/web-1",
        region=server.region,
        endpoint_url=server.endpoint_url,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        spool_dir=tmp_path / "spool",
        **options,
    )


def _write(destination: S3Destination, key: str, content: bytes) -> None:
    with destination.open_write(key) as output:
        output.write(content)


def _sha256(content: bytes) -> str:
    return base64.b64encode(hashlib.sha256(content).digest()).decode()


def test_from_settings_is_none_unless_s3_is_enabled(s3_server: S3Server):
    assert S3Destination.from_settings(load_settings({}, None)) is None
    assert S3Destination.from_settings(load_settings({"S3_BUCKET": "b"}, None)) is None
    assert copy_destinations(load_settings({}, None)) == []

    settings = _settings(s3_server, "jarvis-backups")
    destination = S3Destination.from_settings(settings)
    assert destination is not None
    assert (destination.bucket, destination.prefix) == ("jarvis-backups", "hosts/web-1/")
    [copy] = copy_destinations(settings)
    assert isinstance(copy, S3Destination) and copy.name == "s3"
    assert SECRET_KEY not in repr(destination)


def test_keys_live_under_the_prefix_in_the_repository_layout(s3_server: S3Server, tmp_path):
    bucket = s3_server.create_bucket("jarvis-layout")
    destination = _destination(s3_server, bucket, tmp_path)
    identity = destination.ensure_repository_id()
    with destination.open_write("postgres/full_1.dump.gz.enc") as output:
        output.write(b"dump")
        [spool] = (tmp_path / "spool").iterdir()
        assert spool.stat().st_mode & 0o777 == 0o600
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "hosts/web-1/.repository-id",
        "hosts/web-1/postgres/full_1.dump.gz.enc",
    ]
    stored = s3_server.client().get_object(Bucket=bucket, Key="hosts/web-1/.repository-id")
    assert stored["Body"].read() == identity.encode() + b"\n"  # the local file's format
    assert [o.key for o in destination.list()] == ["postgres/full_1.dump.gz.enc"]
    assert list((tmp_path / "spool").iterdir()) == []  # the spool went with the upload


def test_a_large_object_goes_up_in_parts_and_is_confirmed(s3_server: S3Server, tmp_path):
    bucket = s3_server.create_bucket("jarvis-multipart")
    destination = _destination(s3_server, bucket, tmp_path, multipart_size=5 * MiB)
    content = os.urandom(11 * MiB + 3)
    with destination.open_write("files/packs/ab/pack-1") as output:
        for start in range(0, len(content), MiB):
            output.write(content[start : start + MiB])

    head = s3_server.client().head_object(
        Bucket=bucket, Key="hosts/web-1/files/packs/ab/pack-1", ChecksumMode="ENABLED"
    )
    assert head["ETag"].strip('"').endswith("-3")  # three parts of 5, 5 and 1 MiB
    parts = [
        hashlib.sha256(content[i : i + 5 * MiB]).digest() for i in range(0, len(content), 5 * MiB)
    ]
    composite = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    assert head["ChecksumSHA256"].partition("-")[0] == composite
    requests = []
    destination.client().meta.events.register(
        "before-call.s3.GetObject", lambda **_: requests.append(1)
    )
    with destination.open_read("files/packs/ab/pack-1") as handle:
        assert handle.read(10) == content[:10]
        assert handle.read() == content[10:]
    assert len(requests) == 2  # the first 4 MiB for a small read, then the rest in one
    with destination.open_read("files/packs/ab/pack-1", 5 * MiB - 10, 20) as handle:
        assert handle.read() == content[5 * MiB - 10 : 5 * MiB + 10]

    source = tmp_path / "pack-2"
    source.write_bytes(content[: 6 * MiB])
    destination.put(source, "files/packs/ab/pack-2")
    restored = tmp_path / "restored" / "pack-2"
    destination.get("files/packs/ab/pack-2", restored)
    assert restored.read_bytes() == content[: 6 * MiB]


def test_an_upload_carries_the_sha256_the_server_checks(s3_server: S3Server, tmp_path):
    bucket = s3_server.create_bucket("jarvis-checksum")
    destination = _destination(s3_server, bucket, tmp_path)
    _write(destination, "redis/dump.rdb.gz.enc", b"redis dump" * 100)
    head = s3_server.client().head_object(
        Bucket=bucket, Key="hosts/web-1/redis/dump.rdb.gz.enc", ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"] == _sha256(b"redis dump" * 100)
    assert head["ContentLength"] == 1000


def test_an_upload_the_server_does_not_confirm_fails_and_leaves_nothing(
    s3_server: S3Server, tmp_path
):
    bucket = s3_server.create_bucket("jarvis-unconfirmed")
    with ReadOnlyS3Proxy(s3_server.endpoint_url, misreport_checksums=True) as proxy:
        destination = _destination(s3_server, bucket, tmp_path)
        destination.endpoint_url = proxy.endpoint_url
        with pytest.raises(S3Error) as caught, destination.open_write("postgres/a.gz.enc") as out:
            out.write(b"a dump")
    message = str(caught.value)
    assert message.startswith("postgres/a.gz.enc: the upload to bucket jarvis-unconfirmed")
    assert "not confirmed (SHA-256" in message and "try again" in message
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("Contents") is None
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_download_cut_off_midway_resumes_from_where_it_stopped(s3_server: S3Server, tmp_path):
    bucket = s3_server.create_bucket("jarvis-resume")
    content = os.urandom(3 * MiB)
    with ReadOnlyS3Proxy(s3_server.endpoint_url, cut_bodies=2) as proxy:
        destination = _destination(s3_server, bucket, tmp_path)
        destination.endpoint_url = proxy.endpoint_url
        _write(destination, "postgres/a.gz.enc", content)
        with destination.open_read("postgres/a.gz.enc") as handle:
            assert handle.read() == content
        assert proxy.cuts_left == 0  # both bodies were cut, and resumed


def test_storage_class_and_encryption_reach_the_object(s3_server: S3Server, tmp_path):
    bucket = s3_server.create_bucket("jarvis-classes")
    settings = _settings(s3_server, bucket, S3_STORAGE_CLASS="standard_ia", S3_SSE="AES256")
    destination = S3Destination.from_settings(settings)
    destination.spool_dir = tmp_path / "spool"
    _write(destination, "postgres/a.gz.enc", b"x" * 10)
    head = s3_server.client().head_object(Bucket=bucket, Key="hosts/web-1/postgres/a.gz.enc")
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ServerSideEncryption"] == "AES256"


def test_an_archived_object_is_explained_with_the_restore_command(s3_server: S3Server, tmp_path):
    bucket = s3_server.create_bucket("jarvis-archive")
    destination = _destination(s3_server, bucket, tmp_path, storage_class="DEEP_ARCHIVE")
    _write(destination, "postgres/old.gz.enc", b"old backup")
    with pytest.raises(ArchivedObjectError) as caught:
        destination.open_read("postgres/old.gz.enc")
    message = str(caught.value)
    assert "DEEP_ARCHIVE" in message
    assert (
        f"aws s3api restore-object --bucket {bucket} --key hosts/web-1/postgres/old.gz.enc"
        in message
    )
    with pytest.raises(ArchivedObjectError):
        destination.get("postgres/old.gz.enc", tmp_path / "old")
    assert not (tmp_path / "old").exists()
    assert destination.stat("postgres/old.gz.enc").size == 10  # listing still works


def test_errors_name_the_bucket_and_never_the_credentials(s3_server: S3Server, tmp_path):
    destination = _destination(s3_server, "no-such-jarvis-bucket", tmp_path)
    failures = []
    with pytest.raises(S3Error) as caught, destination.open_write("postgres/a.gz.enc") as out:
        out.write(b"a dump")
    failures.append(str(caught.value))
    assert "uploading postgres/a.gz.enc" in failures[0]
    with pytest.raises(S3Error) as caught:
        destination.delete("postgres/a.gz.enc")
    failures.append(str(caught.value))
    [problem] = destination.probe()
    failures.append(problem)
    for failure in failures:
        assert "no-such-jarvis-bucket" in failure
        assert ACCESS_KEY not in failure and SECRET_KEY not in failure
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_stopped_server_is_named_without_credentials(tmp_path, monkeypatch):
    without_retry_waits(monkeypatch)  # each refused call is tried as often, only at once
    with S3Server() as server:
        bucket = server.create_bucket("jarvis-stopped")
        destination = _destination(server, bucket, tmp_path)
        _write(destination, "wal/0001", b"wal")
        server.stop()
        [problem] = destination.probe()
        with pytest.raises(S3Error) as caught:
            destination.open_read("wal/0001")
        with pytest.raises(S3Error) as written, destination.open_write("wal/0002") as out:
            out.write(b"more wal")
    for failure in (problem, str(caught.value), str(written.value)):
        assert "jarvis-stopped" in failure and "S3_ENDPOINT_URL" in failure
        assert ACCESS_KEY not in failure and SECRET_KEY not in failure
    assert isinstance(written.value, JarvisError) and isinstance(written.value, OSError)
    assert list((tmp_path / "spool").iterdir()) == []


def test_the_health_check_is_the_probe(s3_server: S3Server):
    from engines.monitoring.health import check_s3

    bucket = s3_server.create_bucket("jarvis-health")
    [check] = check_s3(_settings(s3_server, bucket))
    assert (check.ok, check.detail) == (True, f"bucket {bucket}")
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("Contents") is None
    [check] = check_s3(_settings(s3_server, "jarvis-gone"))
    assert not check.ok and "jarvis-gone" in check.detail and SECRET_KEY not in check.detail
    assert check_s3(load_settings({}, None)) == []


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 5 * MiB, 10 * MiB])
def test_uploads_at_the_multipart_edges_are_confirmed(s3_server: S3Server, tmp_path, size):
    """Our SHA-256 is taken as s3transfer sends the object: the whole object's below the
    multipart threshold, from each part's at the threshold itself (one part) and above."""
    bucket = s3_server.create_bucket("jarvis-edges")
    destination = _destination(s3_server, bucket, tmp_path, multipart_size=5 * MiB)
    content = os.urandom(size)
    (tmp_path / "object").write_bytes(content)
    destination.put(tmp_path / "object", "files/packs/cc/edge")
    head = s3_server.client().head_object(
        Bucket=bucket, Key="hosts/web-1/files/packs/cc/edge", ChecksumMode="ENABLED"
    )
    if size < 5 * MiB:
        expected = _sha256(content)
    else:
        parts = [hashlib.sha256(content[i : i + 5 * MiB]).digest() for i in range(0, size, 5 * MiB)]
        expected = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    assert head["ChecksumSHA256"].partition("-")[0] == expected
    with destination.open_read("files/packs/cc/edge") as handle:
        assert handle.read() == content


def test_our_sha256_goes_out_with_each_part_and_no_second_pass_is_needed(
    s3_server: S3Server, tmp_path, monkeypatch
):
    """Each request carries the SHA-256 we took of its body (botocore sends ours rather
    than hashing again), and the confirmation needs no pass over the file of its own."""
    from engines.destinations import s3

    def second_pass(*_):
        raise AssertionError("the file was hashed again")

    monkeypatch.setattr(s3, "sha256_as_sent", second_pass)
    bucket = s3_server.create_bucket("jarvis-sent")
    destination = _destination(s3_server, bucket, tmp_path, multipart_size=5 * MiB)
    sent = []
    destination.client().meta.events.register(
        "before-send.s3.UploadPart",
        lambda request, **_: sent.append(request.headers["x-amz-checksum-sha256"]),
    )
    content = os.urandom(11 * MiB)
    (tmp_path / "object").write_bytes(content)
    destination.put(tmp_path / "object", "files/packs/dd/sent")
    parts = [content[i : i + 5 * MiB] for i in range(0, len(content), 5 * MiB)]
    assert sorted(sent) == sorted(_sha256(part).encode() for part in parts)
    _write(destination, "postgres/small.gz.enc", b"small")  # a single PUT likewise


def test_a_put_stopped_by_its_progress_callback_leaves_nothing(s3_server: S3Server, tmp_path):
    """A cancelled job's progress callback raises: the upload stops with that error, and
    neither an object nor a multipart upload's parts stay behind."""
    from engines.errors import JobCancelledError

    bucket = s3_server.create_bucket("jarvis-cancelled")
    destination = _destination(s3_server, bucket, tmp_path, multipart_size=5 * MiB)
    (tmp_path / "object").write_bytes(os.urandom(16 * MiB))
    seen = []

    def progress(count: int) -> None:
        seen.append(count)
        if sum(seen) >= 6 * MiB:
            raise JobCancelledError()

    with pytest.raises(JobCancelledError):
        destination.put(tmp_path / "object", "files/packs/ee/cancelled", progress)
    client = s3_server.client()
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    sent: list[int] = []
    destination.put(tmp_path / "object", "files/packs/ee/cancelled", sent.append)
    assert sum(sent) == 16 * MiB  # every byte counted once, net of any part resent
    assert destination.stat("files/packs/ee/cancelled").size == 16 * MiB
