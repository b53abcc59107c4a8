"""`GET|HEAD /api/backups/{id}/download` on a real server: the stored (encrypted) bytes,
byte for byte, with their SHA-256; ranges to resume; a set as a tar; damaged, truncated
and escaping stored files refused or cut short; a copy on S3 standing in for a lost file."""

import base64
import hashlib
import io
import os
import random
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from jarvis_tui.api.download.body import UNHASHED
from jarvis_tui.api.download.byte_ranges import ByteRange, Unsatisfiable, requested_range
from jarvis_tui.api.download.checked_files import SETTLE_NS
from jarvis_tui.exit_codes import ExitCode
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import FilesEnv, make_secrets_env, random_text
from tests.support.s3_hosts import s3_settings

BIG = 9 * 1024 * 1024 + 12345  # a secrets file over two read blocks, incompressible


@pytest.fixture
def env(tmp_path: Path) -> FilesEnv:
    files = make_secrets_env(tmp_path)
    files.set(JARVIS_API_TOKEN=TOKEN)
    (files.data / "notes.txt").write_bytes(random_text(50_000, 3))
    (files.root / "app.env").write_bytes(random.Random(7).randbytes(BIG))
    return files


def backed_up(env: FilesEnv, kind: str) -> tuple[str, dict[str, Path]]:
    """The set `backup KIND` made and its artifacts' stored files, by relpath."""
    assert env.cli("backup", kind) == ExitCode.OK
    with env.workspace() as workspace:
        backup = workspace.catalog.list_backup_sets()[0]
        relpaths = [a.relpath for a in workspace.catalog.artifacts_of(backup.id)]
    return backup.id, {relpath: env.repo / relpath for relpath in relpaths}


def download_url(set_id: str) -> str:
    return f"/api/backups/{set_id}/download"


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def settled(path: Path) -> None:
    """Wait (on the clock) until the file's ctime is old enough for a download that
    hashes it to remember it (`checked_files.SETTLE_NS`)."""
    ready = (path.stat().st_ctime_ns + SETTLE_NS) / 1e9 + 0.05
    time.sleep(max(0.0, ready - time.time()))


def logged(server: ApiServer, text: str, count: int) -> int:
    """How often `text` is in the server's output, once it is there `count` times (or
    60 s passed: its output is read by a thread)."""
    deadline = time.monotonic() + 60
    while "".join(server.output).count(text) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return "".join(server.output).count(text)


def received_of_cut_download(client: httpx.Client, url: str) -> tuple[int, bytes]:
    """(Content-Length, what arrived) of a download the server must cut short."""
    received = bytearray()
    with client.stream("GET", url) as answer:
        assert answer.status_code == 200
        length = int(answer.headers["Content-Length"])
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in answer.iter_raw():
                received += chunk
    return length, bytes(received)


def test_one_artifact_is_its_stored_file_with_its_sha256(env: FilesEnv) -> None:
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    expected = path.read_bytes()
    digest = hashlib.sha256(expected)
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get(download_url(set_id))
        head = client.head(download_url(set_id))
        latest = client.get(download_url("latest"))
    assert answer.status_code == 200
    assert answer.content == expected
    assert latest.content == expected and latest.headers["ETag"] == answer.headers["ETag"]
    assert answer.headers["X-Content-SHA256"] == digest.hexdigest()
    assert (
        answer.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
    )
    assert answer.headers["ETag"] == f'"{digest.hexdigest()}"'
    assert answer.headers["Content-Length"] == str(len(expected))
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert f'filename="{path.name}"' in answer.headers["Content-Disposition"]
    assert head.status_code == 200 and head.content == b""
    for name in ("Content-Length", "X-Content-SHA256", "ETag", "Content-Type"):
        assert head.headers[name] == answer.headers[name]


def test_a_download_resumes_with_ranges(env: FilesEnv) -> None:
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    expected = path.read_bytes()
    size, cut = len(expected), 5_000_001
    url = download_url(set_id)
    with ApiServer(env.env_file) as server, server.client() as client:
        etag = client.head(url).headers["ETag"]
        first = client.get(url, headers={"Range": f"bytes=0-{cut - 1}"})
        rest = client.get(url, headers={"Range": f"bytes={cut}-", "If-Range": etag})
        suffix = client.get(url, headers={"Range": "bytes=-1000"})
        past_end = client.get(url, headers={"Range": f"bytes={size}-"})
        changed = client.get(url, headers={"Range": f"bytes={cut}-", "If-Range": '"other"'})
        several = client.get(url, headers={"Range": "bytes=0-9,20-29"})
    assert (first.status_code, rest.status_code) == (206, 206)
    assert first.headers["Content-Range"] == f"bytes 0-{cut - 1}/{size}"
    assert rest.headers["Content-Range"] == f"bytes {cut}-{size - 1}/{size}"
    assert rest.headers["Content-Length"] == str(size - cut)
    assert first.content + rest.content == expected
    assert rest.headers["X-Content-SHA256"] == hashlib.sha256(expected).hexdigest()
    assert suffix.status_code == 206 and suffix.content == expected[-1000:]
    assert past_end.status_code == 416
    assert past_end.headers["Content-Range"] == f"bytes */{size}"
    assert past_end.json()["code"] == "range_not_satisfiable"
    # A changed ETag, or several ranges: the whole body (RFC 9110 allows it).
    assert changed.status_code == 200 and changed.content == expected
    assert several.status_code == 200 and several.content == expected


def test_a_set_of_several_artifacts_is_a_tar_of_them(env: FilesEnv) -> None:
    # A name past ustar's 100 characters: the member's name goes in a pax header.
    long_named = env.root / f"{'settings-of-the-application-' * 4}.env"
    (env.root / "app.env").rename(long_named)
    env.set(BACKUP_SECRET_FILES=str(long_named))
    set_id, stored = backed_up(env, "full")
    assert len(stored) == 2
    assert max(len(f"{set_id}/{relpath}") for relpath in stored) > 100
    url = download_url(set_id)
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get(url)
        again = client.get(url)
        cut = 4_000_000
        resumed = client.get(url, headers={"Range": f"bytes={cut}-"}).content
        relpath = sorted(stored)[0]
        one = client.get(url, params={"artifact": relpath})
        unknown = client.get(url, params={"artifact": "files/nothing.enc"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-tar"
    assert answer.headers["Content-Length"] == str(len(answer.content))
    assert again.content == answer.content  # laid out from the catalog: the same bytes
    assert again.headers["ETag"] == answer.headers["ETag"]
    assert answer.content[:cut] + resumed == answer.content
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
        names = tar.getnames()
        members = {name: tar.extractfile(name).read() for name in names}  # type: ignore[union-attr]
    assert names[0] == f"{set_id}/SHA256SUMS"
    sums = {}
    for line in members.pop(f"{set_id}/SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ")
        sums[name] = digest
    assert members == {f"{set_id}/{rel}": path.read_bytes() for rel, path in stored.items()}
    assert sums == {
        rel: hashlib.sha256(path.read_bytes()).hexdigest() for rel, path in stored.items()
    }
    headers = [answer.headers[f"X-Artifact-SHA256-{n}"] for n in (1, 2)]
    assert sorted(headers) == sorted(f"{digest} {name}" for name, digest in sums.items())
    assert one.status_code == 200 and one.content == stored[relpath].read_bytes()
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "artifact" and relpath in unknown.json()["message"]


def test_a_damaged_file_of_the_right_size_is_never_sent_whole(env: FilesEnv) -> None:
    set_id, stored = backed_up(env, "full")
    big = next(path for path in stored.values() if path.stat().st_size > BIG)
    original = big.read_bytes()
    flip_byte(big, 100)
    with ApiServer(env.env_file) as server, server.client() as client:
        length, received = received_of_cut_download(
            client, f"{download_url(set_id)}?artifact={big.relative_to(env.repo)}"
        )
        assert length == len(original)
        assert 0 < len(received) < length  # the blocks before the last went out
        tar_length, in_tar = received_of_cut_download(client, download_url(set_id))
        assert len(in_tar) < tar_length
        # A range that does not cover the whole file cannot be checked: it is sent.
        part = client.get(
            download_url(set_id),
            params={"artifact": str(big.relative_to(env.repo))},
            headers={"Range": "bytes=0-999"},
        )
        assert part.status_code == 206 and part.content == big.read_bytes()[:1000]
    log = "".join(server.output)
    assert "cut short" in log and "jarvis-tui verify" in log
    assert hashlib.sha256(original).hexdigest() in log


def test_an_unchanged_file_is_hashed_once_and_a_change_in_place_is_noticed(
    env: FilesEnv,
) -> None:
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    expected = path.read_bytes()
    settled(path)
    url = download_url(set_id)
    with ApiServer(env.env_file) as server, server.client() as client:
        assert client.get(url).content == expected  # hashed, and remembered
        assert logged(server, UNHASHED, 0) == 0
        assert client.get(url).content == expected  # unchanged: not hashed again
        assert logged(server, UNHASHED, 1) == 1
        # A byte flipped through the same inode, its mtime put back: ctime moved.
        before = path.stat()
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, bytes([expected[100] ^ 0x01]), 100)
        finally:
            os.close(fd)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino,
            before.st_size,
            before.st_mtime_ns,
        )
        assert after.st_ctime_ns != before.st_ctime_ns
        length, received = received_of_cut_download(client, url)
        assert 0 < len(received) < length
        assert logged(server, "sha256 of the stored bytes is", 1) == 1
        assert logged(server, UNHASHED, 1) == 1  # the damaged file was hashed


def test_a_truncated_file_is_an_integrity_error_before_any_byte(env: FilesEnv) -> None:
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    path.write_bytes(path.read_bytes()[:-1])
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get(download_url(set_id))
        head = client.head(download_url(set_id))
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "integrity"
    assert str(path.relative_to(env.repo)) in body["message"]
    assert f"jarvis-tui verify {set_id}" in body["message"]
    assert head.status_code == 422
    assert f"download refused: {path.relative_to(env.repo)}" in "".join(server.output)


def test_a_stored_file_that_leads_out_of_the_repository_is_refused(env: FilesEnv) -> None:
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    outside = env.root / "elsewhere.enc"
    outside.write_bytes(path.read_bytes())  # the right bytes, but not the repository's
    path.unlink()
    path.symlink_to(outside)
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get(download_url(set_id))
    assert answer.status_code == 422
    assert "outside the repository" in answer.json()["message"]


def test_unknown_backups_and_missing_or_wrong_tokens(env: FilesEnv) -> None:
    set_id, _ = backed_up(env, "secrets")
    with ApiServer(env.env_file) as server:
        with server.client() as client:
            unknown = client.get(download_url("files_2020-01-01_000000"))
        with server.client(token=None) as anonymous:
            without = anonymous.get(download_url(set_id))
        with server.client(token="x" * 40) as wrong:
            wrong_token = wrong.get(download_url(set_id))
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert without.status_code == 401
    assert wrong_token.status_code == 401


def test_a_file_lost_or_truncated_here_comes_from_its_s3_copy(env: FilesEnv, s3_server) -> None:
    s3_server.create_bucket("jarvis-offsite")
    env.set(**s3_settings(s3_server))
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    expected = path.read_bytes()
    path.unlink()
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get(download_url(set_id))
        tail = client.get(download_url(set_id), headers={"Range": "bytes=1000000-"})
        again = client.get(download_url(set_id))
    assert answer.status_code == 200, answer.text
    assert answer.content == expected and again.content == expected
    assert UNHASHED not in "".join(server.output)  # bytes from S3 are always hashed
    assert answer.headers["X-Content-SHA256"] == hashlib.sha256(expected).hexdigest()
    assert tail.status_code == 206 and tail.content == expected[1_000_000:]

    path.write_bytes(expected[:-10])  # a truncated file here: the whole copy is read
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get(download_url(set_id))
    assert answer.status_code == 200 and answer.content == expected


def test_a_client_that_goes_away_leaves_nothing_open(env: FilesEnv) -> None:
    set_id, stored = backed_up(env, "secrets")
    (path,) = stored.values()
    with ApiServer(env.env_file) as server, server.client() as client:
        for _ in range(3):
            with client.stream("GET", download_url(set_id)) as answer:
                next(answer.iter_raw())
        assert server.process is not None
        fds = Path(f"/proc/{server.process.pid}/fd")

        def still_open() -> list[str]:
            targets = [str(fd.readlink()) for fd in fds.iterdir() if fd.is_symlink()]
            return [target for target in targets if target == str(path)]

        deadline = time.monotonic() + 60
        while still_open() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert still_open() == []
        assert client.get(download_url(set_id)).content == path.read_bytes()
    assert "Traceback" not in "".join(server.output)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=990-", ByteRange(990, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # a suffix longer than the body: all of it
        ("bytes=500-5000", ByteRange(500, 999)),  # an end past the body's: cut to it
        ("Bytes= 7-7 ", ByteRange(7, 7)),
        (None, None),
        ("bytes=0-9,20-29", None),  # several ranges: the whole body
        ("bytes=9-2", None),  # invalid: ignored
        ("items=0-9", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
    ],
)
def test_the_range_asked_for(header: str | None, expected: ByteRange | None) -> None:
    assert requested_range(header, 1000) == expected


@pytest.mark.parametrize(
    ("header", "length"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=-1", 0)]
)
def test_ranges_past_the_end_are_unsatisfiable(header: str, length: int) -> None:
    with pytest.raises(Unsatisfiable):
        requested_range(header, length)


def test_a_descriptor_is_checked_for_where_it_really_points(tmp_path):
    """The resolve-then-open race (a parent folder swapped for a symlink in between) is
    closed by asking the opened descriptor where it points."""
    from jarvis_tui.api.download.stored_artifact import _opened_inside

    root = tmp_path / "repo"
    (root / "postgres").mkdir(parents=True)
    inside = root / "postgres" / "a.enc"
    outside = tmp_path / "elsewhere.enc"
    inside.write_bytes(b"x")
    outside.write_bytes(b"x")
    for path, expected in ((inside, True), (outside, False)):
        fd = os.open(path, os.O_RDONLY)
        try:
            assert _opened_inside(fd, root.resolve()) is expected
        finally:
            os.close(fd)
