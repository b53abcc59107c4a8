"""The artifact pipeline end to end: files on disk, sidecars, tampering, memory."""

import gzip
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engines.errors import IntegrityError, JobCancelledError, KeyNotAvailableError, NotFoundError
from engines.pipeline.artifacts import (
    Expected,
    artifact_filename,
    decrypt_artifact,
    describe_artifact,
    open_artifact_plain,
    read_artifact_whole,
    read_sealed_metadata,
    read_sidecar,
    sidecar_path_for,
    verify_artifact,
    write_artifact,
)
from engines.pipeline.compression import GZIP_BLOCK_SIZE
from engines.pipeline.crypto import (
    TAG_SIZE,
    ContainerWriter,
    Keyring,
    MasterKey,
    generate_key_hex,
    read_header,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = MasterKey.from_hex(generate_key_hex())
KEYRING = Keyring(KEY)
CHUNK = 4096
RECORD = 5 + CHUNK + TAG_SIZE  # frame, full chunk, tag
SHA_HEX = 64


def read_plain(path: Path, keyring: Keyring = KEYRING) -> bytes:
    with open_artifact_plain(path, keyring) as plain:
        return plain.read()


def head(path: Path) -> int:
    """The size of the artifact's header (its identity makes it vary)."""
    with path.open("rb") as handle:
        return len(read_header(handle, path.name)[1])


def decompress(codec: str, stream: bytes) -> bytes:
    if codec == "gzip":
        return gzip.decompress(stream)
    return zstandard.ZstdDecompressor().decompressobj().decompress(stream)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "postgres"
    path.mkdir()
    return path


@pytest.fixture
def sealed(folder: Path) -> Path:
    """A stored (incompressible) gzip artifact of a dozen 4 KiB chunks."""
    path = folder / artifact_filename("x.dump", "gzip")
    write_artifact([os.urandom(45_000)], path, KEYRING, {"source": "postgres"}, chunk_size=CHUNK)
    return path


def test_names():
    assert artifact_filename("x.dump", "gzip") == "x.dump.gz.enc"
    assert artifact_filename("x.dump", "zstd") == "x.dump.zst.enc"
    assert sidecar_path_for(Path("a/x.dump.gz.enc")) == Path("a/x.dump.gz.enc.metadata.json")
    with pytest.raises(ValueError, match="unknown codec"):
        artifact_filename("x", "lz4")


SIZES = [0, 1, GZIP_BLOCK_SIZE - 1, GZIP_BLOCK_SIZE, GZIP_BLOCK_SIZE + 1]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    codec=st.sampled_from(["gzip", "zstd"]),
    data=st.binary(max_size=20_000),
    chunk_size=st.sampled_from([64, 1000, 1024 * 1024]),
    pieces=st.integers(1, 4),
)
@example(codec="gzip", data=b"", chunk_size=64, pieces=1)
@example(codec="zstd", data=b"", chunk_size=64, pieces=1)
@example(codec="gzip", data=b"\x00", chunk_size=64, pieces=1)
@example(codec="gzip", data=os.urandom(SIZES[2]), chunk_size=1024 * 1024, pieces=3)
@example(codec="gzip", data=os.urandom(SIZES[3]), chunk_size=1024 * 1024, pieces=1)
@example(codec="gzip", data=os.urandom(SIZES[4]), chunk_size=1024 * 1024, pieces=2)
@example(codec="zstd", data=os.urandom(3 * 1024 * 1024 + 5), chunk_size=1024 * 1024, pieces=4)
def test_round_trip(codec: str, data: bytes, chunk_size: int, pieces: int):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / artifact_filename("x.dump", codec)
        step = max(1, -(-len(data) // pieces))
        source = [data[start : start + step] for start in range(0, len(data), step)]
        info = write_artifact(source, path, KEYRING, {}, codec=codec, chunk_size=chunk_size)
        assert info.plain_size == len(data)
        assert read_plain(path) == data
        plain_stream = decrypt_artifact(path, Path(scratch) / "x.dump.out", KEYRING)
        assert decompress(codec, plain_stream.read_bytes()) == data
        assert verify_artifact(path, KEYRING).ok


@pytest.mark.parametrize(("codec", "tool"), [("gzip", "gzip"), ("zstd", "zstd")])
def test_command_line_tools_read_the_decrypted_stream(folder: Path, codec: str, tool: str):
    data = b"".join(f"{n} INSERT INTO t VALUES ({n * 7});\n".encode() for n in range(200_000))
    data += os.urandom(1_500_000)
    path = folder / artifact_filename("x.dump", codec)
    write_artifact(io.BytesIO(data), path, KEYRING, {}, codec=codec)
    out = decrypt_artifact(path, folder / path.name.removesuffix(".enc"), KEYRING)
    result = subprocess.run([tool, "-dc", str(out)], capture_output=True, check=True)
    assert result.stdout == data


def test_sidecar_describes_the_stored_file(folder: Path):
    path = folder / "x.dump.gz.enc"
    data = b"hello\n" * 10_000
    info = write_artifact([data], path, KEYRING, {"source": "postgres", "set_id": "s1"})
    sidecar = read_sidecar(sidecar_path_for(path))
    assert read_sidecar(path) == sidecar
    assert sidecar == {k: v for k, v in info.metadata.items() if not k.endswith("_size")} | {
        "stored_size": info.stored_size
    }
    assert sidecar["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest() == info.checksum
    assert len(info.checksum) == SHA_HEX
    assert sidecar["stored_size"] == path.stat().st_size == info.stored_size
    # Sizes of what is inside are sealed (and in the catalog), never in the plaintext sidecar.
    assert "plain_size" not in sidecar and "compressed_size" not in sidecar
    sealed = read_sealed_metadata(path, KEYRING)
    assert sealed["plain_size"] == len(data) == info.plain_size == info.metadata["plain_size"]
    compressed = decrypt_artifact(path, folder / "x.dump.gz", KEYRING).stat().st_size
    assert sealed["compressed_size"] == compressed == info.metadata["compressed_size"]
    assert (
        (sidecar["codec"], sidecar["key_id"]) == ("gzip", KEY.key_id) == (info.codec, info.key_id)
    )
    assert sidecar["format"] == "jarvis-artifact/1"
    assert (sidecar["source"], sidecar["set_id"]) == ("postgres", "s1")
    assert datetime.fromisoformat(sidecar["created_at"]).utcoffset().total_seconds() == 0
    assert sidecar["tool_version"] and sidecar["host"]
    assert info.sidecar_path == sidecar_path_for(path)
    for written in (path, info.sidecar_path):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_caller_created_at_is_kept(folder: Path):
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat()
    info = write_artifact([b"x"], folder / "x.gz.enc", KEYRING, {"created_at": moment})
    assert info.metadata["created_at"] == moment


def test_metadata_callable_runs_after_the_source_is_exhausted(folder: Path):
    seen = {"rows": 0, "done": False}

    def rows():
        for n in range(1000):
            seen["rows"] += 1
            yield f"row {n}\n".encode()
        seen["done"] = True

    def metadata() -> dict:
        assert seen["done"]
        return {"rows": seen["rows"]}

    info = write_artifact(rows(), folder / "x.gz.enc", KEYRING, metadata)
    assert info.metadata["rows"] == 1000
    assert verify_artifact(folder / "x.gz.enc", KEYRING).ok


def test_progress_counts_plain_bytes(folder: Path):
    reported: list[int] = []
    data = os.urandom(3 * 1024 * 1024 + 10)
    write_artifact(io.BytesIO(data), folder / "x.gz.enc", KEYRING, {}, progress=reported.append)
    assert reported == sorted(reported) and reported[-1] == len(data) and len(reported) == 4


def test_cancelling_leaves_nothing_behind(folder: Path):
    checks = iter([False, False, True])
    blocks = (os.urandom(100_000) for _ in range(10))
    with pytest.raises(JobCancelledError, match=r"postgres/x\.gz\.enc"):
        write_artifact(blocks, folder / "x.gz.enc", KEYRING, {}, cancelled=lambda: next(checks))
    assert list(folder.iterdir()) == []


def test_failing_source_leaves_nothing_behind(folder: Path):
    def broken():
        yield os.urandom(2_000_000)
        raise ConnectionError("pg_dump went away")

    with pytest.raises(ConnectionError):
        write_artifact(broken(), folder / "x.gz.enc", KEYRING, {})
    assert list(folder.iterdir()) == []


def test_previous_key_still_opens_old_artifacts(sealed: Path):
    rotated = Keyring(MasterKey.from_hex(generate_key_hex()), (KEY,))
    assert read_plain(sealed, rotated) == read_plain(sealed)
    assert verify_artifact(sealed, rotated).ok


def test_missing_key_is_named_everywhere(sealed: Path, folder: Path):
    other = Keyring(MasterKey.from_hex(generate_key_hex()))
    for attempt in (
        lambda: read_plain(sealed, other),
        lambda: decrypt_artifact(sealed, folder / "out.gz", other),
        lambda: verify_artifact(sealed, other),
    ):
        with pytest.raises(KeyNotAvailableError, match=KEY.key_id):
            attempt()
    assert not (folder / "out.gz").exists()


def test_missing_artifact_is_named(folder: Path):
    with pytest.raises(NotFoundError, match=r"postgres/none\.gz\.enc"):
        verify_artifact(folder / "none.gz.enc", KEYRING)


def assert_refused_everywhere(path: Path, expected: str, error: type = IntegrityError) -> None:
    """Reading, decrypting and verifying `path` all report `expected`."""
    with pytest.raises(error, match=re.escape(expected)):
        read_plain(path)
    out = path.parent / "restored.gz"
    with pytest.raises(error, match=re.escape(expected)):
        decrypt_artifact(path, out, KEYRING)
    assert [
        p.name for p in path.parent.iterdir() if p.name.startswith((".restored", "restored"))
    ] == []
    if error is IntegrityError:
        report = verify_artifact(path, KEYRING)
        assert not report.ok
        assert any(expected in problem for problem in report.problems), report.problems


def chunk_offsets(path: Path) -> list[int]:
    """Offsets of every record of a `sealed` artifact: data chunks, then metadata."""
    compressed = read_sealed_metadata(path, KEYRING)["compressed_size"]
    full = (compressed - 1) // CHUNK
    offsets = [head(path) + index * RECORD for index in range(full + 1)]
    last = compressed - full * CHUNK
    return [*offsets, offsets[-1] + 5 + last + TAG_SIZE]


def test_every_cut_at_or_inside_a_chunk_is_detected(sealed: Path):
    original = sealed.read_bytes()
    offsets = chunk_offsets(sealed)
    assert len(offsets) > 10
    for index, offset in enumerate(offsets[1:-1], start=1):
        sealed.write_bytes(original[:offset])
        assert_refused_everywhere(
            sealed, f"postgres/x.dump.gz.enc: truncated after chunk {index - 1} (last chunk"
        )
        sealed.write_bytes(original[: offset + 100])
        assert_refused_everywhere(sealed, f"truncated inside chunk {index}")
    sealed.write_bytes(original[: offsets[-1]])
    assert_refused_everywhere(sealed, f"after chunk {len(offsets) - 2} (metadata record missing)")
    sealed.write_bytes(original[:-1])
    assert_refused_everywhere(sealed, "truncated inside chunk")


def test_flipped_bits_are_detected_in_every_region(sealed: Path):
    original = sealed.read_bytes()
    header = head(sealed)
    positions = {
        0: "not a Jarvis encrypted artifact",  # magic
        8: "unsupported container format version",
        9: "the header is damaged",  # codec id
        12: "the header is damaged",  # key id: damage (exit 4), not a missing key (5)
        30: "the header is damaged",  # salt
        header - 1: "the header is damaged",  # the header's digest
        header: "chunk 0 has an invalid frame",  # record kind
        header + 3: "chunk 0 has an invalid frame",  # record length
        header + 5 + 7: "chunk 0 failed authentication",  # ciphertext
        header + 2 * RECORD - 1: "chunk 1 failed authentication",  # tag
        len(original) - 1: "metadata record (chunk",
    }
    for position, expected in positions.items():
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        sealed.write_bytes(damaged)
        assert_refused_everywhere(sealed, expected)


def test_swapped_chunks_are_detected(sealed: Path):
    data = sealed.read_bytes()
    first, second = head(sealed) + RECORD, head(sealed) + 2 * RECORD
    swapped = data[:first] + data[second : second + RECORD] + data[first:second]
    sealed.write_bytes(swapped + data[second + RECORD :])
    assert_refused_everywhere(sealed, "postgres/x.dump.gz.enc: chunk 1 failed authentication")


def test_chunk_from_another_artifact_is_detected(sealed: Path, folder: Path):
    other = folder / "y.dump.gz.enc"
    write_artifact([os.urandom(45_000)], other, KEYRING, {}, chunk_size=CHUNK)
    ours, theirs = sealed.read_bytes(), other.read_bytes()
    offset = head(sealed) + 2 * RECORD
    sealed.write_bytes(ours[:offset] + theirs[offset : offset + RECORD] + ours[offset + RECORD :])
    assert_refused_everywhere(sealed, "chunk 2 failed authentication")


def test_verify_reports_damage_and_the_real_checksum(sealed: Path):
    damaged = bytearray(sealed.read_bytes())
    damaged[head(sealed) + 3 * RECORD + 100] ^= 0x01
    sealed.write_bytes(damaged)
    report = verify_artifact(sealed, KEYRING)
    assert not report.ok and report.chunks == 3
    assert report.checksum == hashlib.sha256(damaged).hexdigest()
    assert any("chunk 3 failed authentication" in p for p in report.problems)
    assert any("sha256 of the file is" in p for p in report.problems)


def test_intact_artifact_verifies(sealed: Path):
    report = verify_artifact(sealed, KEYRING)
    assert (report.ok, report.problems) == (True, [])
    assert report.checksum == read_sidecar(sealed)["checksum"]
    assert report.plain_size == 45_000
    assert report.chunks == len(chunk_offsets(sealed))  # data chunks and the metadata record


def test_sealed_metadata_matches_the_sidecar_and_is_authenticated(sealed: Path):
    sidecar = read_sidecar(sealed)
    del sidecar["checksum"], sidecar["stored_size"]
    in_sidecar = {k: v for k, v in read_sealed_metadata(sealed, KEYRING).items() if k in sidecar}
    assert in_sidecar == sidecar
    damaged = bytearray(sealed.read_bytes())
    damaged[head(sealed) + 2 * RECORD + 9] ^= 0x04
    sealed.write_bytes(damaged)
    with pytest.raises(IntegrityError, match="chunk 2 failed authentication"):
        read_sealed_metadata(sealed, KEYRING)


def forge(path: Path, **changes) -> None:
    sidecar_path = sidecar_path_for(path)
    sidecar = json.loads(sidecar_path.read_text())
    sidecar.update(changes)
    sidecar_path.write_text(json.dumps(sidecar))


def test_forged_sidecar_fields_are_caught(sealed: Path):
    forge(sealed, source="redis", plain_size=1)
    report = verify_artifact(sealed, KEYRING)
    assert not report.ok
    assert report.problems == [
        "postgres/x.dump.gz.enc: sidecar disagrees with the authenticated metadata on "
        "plain_size, source (sidecar edited or forged)"
    ]


def test_forged_checksum_and_size_are_caught(sealed: Path):
    forge(sealed, checksum="0" * SHA_HEX, stored_size=1)
    problems = verify_artifact(sealed, KEYRING).problems
    assert len(problems) == 2
    assert "sidecar records " + "0" * SHA_HEX in problems[0]
    assert "but the sidecar records 1" in problems[1]


def test_missing_or_unreadable_sidecar_is_a_problem(sealed: Path):
    sidecar = sidecar_path_for(sealed)
    sidecar.write_text("{not json")
    assert "sidecar is not valid JSON" in verify_artifact(sealed, KEYRING).problems[0]
    with pytest.raises(IntegrityError, match="not valid JSON"):
        read_sidecar(sealed)
    sidecar.unlink()
    assert verify_artifact(sealed, KEYRING).problems == [
        "postgres/x.dump.gz.enc.metadata.json: metadata sidecar does not exist"
    ]


MEMORY_CHILD = """
import hashlib, os, sys
from pathlib import Path
from engines.pipeline.artifacts import open_artifact_plain, write_artifact
from engines.pipeline.crypto import Keyring, MasterKey

MiB = 1024 * 1024
mode, codec, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
keyring = Keyring(MasterKey.from_hex(os.environ["TEST_KEY_HEX"]))
digest = hashlib.sha256()

def stream(total):
    lines = b"".join(b"%012d INFO copied block ok user=jarvis\\n" % n for n in range(25000))
    for n in range(total // MiB):
        block = os.urandom(MiB) if n % 8 < 4 else lines[:MiB]
        digest.update(block)
        yield block

if mode == "write":
    write_artifact(stream(256 * MiB), path, keyring, {}, codec=codec)
else:
    with open_artifact_plain(path, keyring) as plain:
        while block := plain.read(MiB):
            digest.update(block)
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(int(peak) // 1024, digest.hexdigest())
"""


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_256_mib_stream_keeps_memory_flat(folder: Path, codec: str):
    path = folder / artifact_filename("big", codec)
    env = {**os.environ, "TEST_KEY_HEX": generate_key_hex(), "PYTHONPATH": str(ROOT)}
    results = {}
    for mode in ("write", "read"):
        child = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, mode, codec, str(path)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        peak_mb, digest = child.stdout.split()
        results[mode] = (int(peak_mb), digest)
    assert results["write"][1] == results["read"][1]
    key = Keyring(MasterKey.from_hex(env["TEST_KEY_HEX"]))
    assert read_sealed_metadata(path, key)["plain_size"] == 256 * 1024 * 1024
    assert results["write"][0] < 120, f"writing peaked at {results['write'][0]} MB"
    assert results["read"][0] < 120, f"reading peaked at {results['read'][0]} MB"


def seal_raw(path: Path, compressed: bytes, metadata: dict, codec_id: int = 1) -> None:
    """A container around `compressed` with any sealed metadata: what someone holding the
    key could write."""
    with path.open("wb") as out:
        writer = ContainerWriter(out, KEY, codec_id)
        writer.write(compressed)
        writer.finish(json.dumps(metadata).encode())


def test_small_artifacts_never_inflate_past_their_sealed_size(folder: Path):
    bomb = folder / "bomb.gz.enc"
    inflated = 64 * 1024 * 1024
    seal_raw(bomb, gzip.compress(bytes(inflated), 1), {"plain_size": 1000})
    with pytest.raises(IntegrityError, match="more than the 1000 bytes sealed"):
        read_artifact_whole(bomb, KEYRING)
    capped = Expected(plain_size=1000)
    with (
        pytest.raises(IntegrityError, match="more than the 1000 bytes recorded"),
        open_artifact_plain(bomb, KEYRING, capped) as plain,
    ):
        plain.read()
    short = folder / "short.gz.enc"
    seal_raw(short, gzip.compress(b"abc"), {"plain_size": 10})
    with pytest.raises(IntegrityError, match="3 bytes, the 10 bytes sealed"):
        read_artifact_whole(short, KEYRING)
    exact = folder / "exact.gz.enc"
    seal_raw(exact, gzip.compress(b"hello"), {"plain_size": 5})
    assert read_artifact_whole(exact, KEYRING, Expected(plain_size=5)) == b"hello"
    with pytest.raises(IntegrityError, match="differs from the catalog's 6"):
        read_artifact_whole(exact, KEYRING, Expected(plain_size=6))


def test_describe_artifact_authenticates_its_metadata_without_reading_the_data(sealed: Path):
    assert describe_artifact(sealed, KEYRING) == read_sealed_metadata(sealed, KEYRING)
    original = sealed.read_bytes()
    for position, expected in (
        (20, "the header is damaged"),
        (head(sealed) + 3, "chunk 0 has an invalid frame"),
        (len(original) - 1, "metadata record (chunk"),
    ):
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        sealed.write_bytes(bytes(damaged))
        with pytest.raises(IntegrityError, match=re.escape(expected)):
            describe_artifact(sealed, KEYRING)
    sealed.write_bytes(original + b"\0")
    with pytest.raises(IntegrityError, match="unexpected data after the metadata record"):
        describe_artifact(sealed, KEYRING)
    sealed.write_bytes(original[:-1])
    with pytest.raises(IntegrityError, match="metadata record"):
        describe_artifact(sealed, KEYRING)
