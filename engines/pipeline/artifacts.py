"""Artifacts: a source stream compressed, sealed and hashed into a stream (`seal_stream`),
and read back from streams (`StoredBytes`) by every reader here.

The repository writes and reads these through its destination's face
(`engines/repository/stored.py`), which makes a write appear whole or not at all;
the path-level `write_artifact` and the readers' `Path` arguments are the same code
over a file on this host (tests, benchmarks, a file the operator picked by hand).

An artifact `x.dump.gz.enc` is the encrypted container of a standard `.gz`
(or `.zst`) stream. Beside it, `x.dump.gz.enc.metadata.json` (the sidecar)
describes it; the sidecar is written last, so its presence marks a complete
artifact. The container ends with an authenticated copy of the sidecar
(without the two fields that describe the stored file itself), so an edited
sidecar is caught by `verify_artifact`.

The container's header carries the artifact's identity (repository id, source,
set id, repository-relative name), authenticated with every chunk. Every reader
is told what it was asked for (`Expected`: that identity, and the key id,
checksum and plain size the catalog recorded) and refuses anything else before
handing out a byte. Artifacts from before identities existed (container
version 1) are read in full once first: checksum, key id and sealed set id and
source against what was asked for.

The sidecar leaves out the sizes of the plaintext and of the compressed stream
(they are sealed inside, and in the catalog): nothing that reads the sidecar
needs them, and a plaintext copy would tell anyone with the repository more.
"""

import contextlib
import functools
import hashlib
import io
import json
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, BinaryIO

from engines.errors import IntegrityError, JobCancelledError, NotFoundError
from engines.pipeline.compression import (
    CODEC_IDS,
    CODEC_SUFFIXES,
    check_codec,
    codec_for_id,
    make_compressor,
    open_decompressor,
)
from engines.pipeline.crypto import (
    DEFAULT_CHUNK_SIZE,
    FORMAT_VERSION,
    MAGIC,
    ContainerReader,
    ContainerWriter,
    DecryptedStream,
    Keyring,
    describe_identity,
    read_metadata_record,
)
from engines.plumbing.fsutil import atomic_output

FORMAT = "jarvis-artifact/1"
SIDECAR_SUFFIX = ".metadata.json"
READ_SIZE = 1024 * 1024
# Sidecar fields that describe the stored file, which cannot be inside it.
STORED_FIELDS = ("stored_size", "checksum")
# Sealed fields the sidecar leaves out: sizes of what is inside and of the source it
# came from (a side channel; the catalog and the sealed metadata keep them).
SEALED_ONLY_FIELDS = ("plain_size", "compressed_size", "database_size", "used_memory")


@dataclass(frozen=True)
class Expected:
    """What a reader was asked for; an artifact that is anything else is refused.

    `identity` holds the fields the container's identity must match (none for a
    file from outside the repository, which the operator picked by hand);
    `key_id`, `checksum` and `plain_size` are what the catalog recorded, when it
    knows the artifact. More plaintext than `plain_size` is damage.
    """

    identity: dict[str, str] = field(default_factory=dict)
    key_id: str | None = None
    checksum: str | None = None
    plain_size: int | None = None


def artifact_identity(repository_id: str, source: str, set_id: str, relpath: str) -> dict:
    return {"repository": repository_id, "source": source, "set_id": set_id, "name": relpath}


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    sidecar_path: Path
    checksum: str
    stored_size: int
    plain_size: int
    key_id: str
    codec: str
    metadata: dict  # the full sidecar


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    problems: list[str]
    checksum: str
    chunks: int
    plain_size: int


@dataclass(frozen=True)
class StoredBytes:
    """An artifact's bytes wherever they are kept: how messages name it, how to open it
    and its sidecar, and its stored size. The repository builds these over its
    destination's streams (`engines/repository/stored.py`); `file_bytes` over a file on
    this host. Readers that look ahead (the container version, the metadata record)
    seek on what `open` returns: a local file, or a destination's seekable reader."""

    name: str
    open: Callable[[], BinaryIO]
    open_sidecar: Callable[[], BinaryIO]
    size: Callable[[], int]


def file_bytes(path: Path) -> StoredBytes:
    """An artifact file on this host (outside the repository, or in a test)."""
    sidecar = sidecar_path_for(path)
    return StoredBytes(
        display_name(path),
        lambda: path.open("rb"),
        lambda: sidecar.open("rb"),
        lambda: path.stat().st_size,
    )


# What the readers take: bytes from a destination, or (one line of convenience for
# tests, benchmarks and files picked by hand) an artifact file's path.
ArtifactBytes = StoredBytes | Path


def _bytes_of(source: ArtifactBytes) -> StoredBytes:
    return source if isinstance(source, StoredBytes) else file_bytes(source)


def artifact_filename(stem: str, codec: str) -> str:
    return f"{stem}{CODEC_SUFFIXES[check_codec(codec)]}.enc"


def sidecar_path_for(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def display_name(path: Path) -> str:
    """How messages name an artifact: its folder (the source) and file name."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


@functools.cache
def _tool_version() -> str:
    try:
        return package_metadata.version("jarvis-backup-console")
    except package_metadata.PackageNotFoundError:
        return "unknown"


class _HashingWriter:
    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._handle.write(data)


class _HashingReader:
    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(READ_SIZE):
            pass


class _SealingThread:
    """Runs `seal` (encrypt, hash, write) on its own thread, fed through a short queue.

    The thread reading the source and feeding the compressor then never waits
    for sealing, so compression and sealing overlap.
    """

    def __init__(self, seal: Callable[[bytes], None], depth: int = 4):
        self._seal = seal
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name="artifact-sealer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None and not self._aborted:
                try:
                    self._seal(data)
                except BaseException as exc:  # handed to the producer on its next call
                    self._error = exc

    def write(self, data: bytes) -> None:
        self._raise_if_failed()
        self._queue.put(data)

    def finish(self) -> None:
        self._stop()
        self._raise_if_failed()

    def abort(self) -> None:
        self._aborted = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


def _source_blocks(source: Iterable[bytes] | BinaryIO | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), READ_SIZE):
            yield view[start : start + READ_SIZE]
    elif hasattr(source, "read"):
        while block := source.read(READ_SIZE):
            yield block
    else:
        yield from source


def _authenticated_metadata(
    metadata: dict | Callable[[], dict], codec: str, key_id: str, plain: int, compressed: int
) -> dict[str, Any]:
    fields = metadata() if callable(metadata) else metadata
    if not isinstance(fields, dict):
        raise TypeError(f"artifact metadata must be a dict, got {type(fields).__name__}")
    created_at = fields.get("created_at") or datetime.now(UTC).isoformat(timespec="microseconds")
    return {
        **{k: v for k, v in fields.items() if k not in STORED_FIELDS},
        "format": FORMAT,
        "codec": codec,
        "key_id": key_id,
        "plain_size": plain,
        "compressed_size": compressed,
        "created_at": created_at,
        "tool_version": _tool_version(),
        "host": socket.gethostname(),
    }


def _encode(fields: dict[str, Any], name: str) -> bytes:
    try:
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: metadata is not JSON-serialisable ({exc})") from None


@dataclass(frozen=True)
class SealedStream:
    """What `seal_stream` wrote: the stored bytes' checksum and size, and the fields
    sealed inside (`sealed`) and described beside it (`metadata`, the full sidecar)."""

    checksum: str
    stored_size: int
    plain_size: int
    key_id: str
    codec: str
    sealed: dict[str, Any]
    metadata: dict[str, Any]


def seal_stream(
    source: Iterable[bytes] | BinaryIO,
    output: BinaryIO,
    keyring: Keyring,
    metadata: dict | Callable[[], dict],
    *,
    name: str,
    codec: str = "gzip",
    level: int | None = None,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    identity: Mapping[str, str] | None = None,
    container_version: int = FORMAT_VERSION,
) -> SealedStream:
    """Compress, encrypt and hash `source` into `output` (a destination's `open_write`
    stream, or a local file): the one implementation of an artifact's bytes.

    `identity` (see `artifact_identity`) is bound into the container. A callable
    `metadata` is evaluated once the source is exhausted. `name` is how messages
    name the artifact.
    """
    check_codec(codec)
    key = keyring.current
    stored = _HashingWriter(output)
    container = ContainerWriter(
        stored, key, CODEC_IDS[codec], chunk_size,
        identity=identity, version=container_version,
    )  # fmt: skip
    sealer = _SealingThread(container.write)
    compressor = make_compressor(codec, sealer.write, level, threads)
    plain_size = 0
    try:
        for block in _source_blocks(source):
            if cancelled is not None and cancelled():
                raise JobCancelledError(f"writing {name} was cancelled")
            compressor.write(block)
            plain_size += len(block)
            if progress is not None:
                progress(plain_size)
        compressor.finish()
        sealer.finish()
    finally:
        compressor.close()
        sealer.abort()
    fields = _authenticated_metadata(metadata, codec, key.key_id, plain_size, container.plain_size)
    container.finish(_encode(fields, name))
    checksum = stored.sha256.hexdigest()
    described = {**fields, "stored_size": stored.size, "checksum": checksum}
    return SealedStream(checksum, stored.size, plain_size, key.key_id, codec, fields, described)


def write_artifact(
    source: Iterable[bytes] | BinaryIO,
    final_path: Path,
    keyring: Keyring,
    metadata: dict | Callable[[], dict],
    *,
    sidecar: bool = True,
    **options: Any,
) -> ArtifactInfo:
    """`seal_stream` into the file `final_path` (in an existing folder), then its sidecar
    (without `sidecar`, none). On any error or cancellation nothing appears under
    `final_path`. The repository writes through its destination instead
    (`engines/repository/artifacts.py`); this is for files on this host (tests,
    benchmarks)."""
    with atomic_output(final_path) as handle:
        sealed = seal_stream(
            source, handle, keyring, metadata, name=display_name(final_path), **options
        )
    try:
        if sidecar:
            write_sidecar(final_path, sealed.sealed, sealed.checksum, sealed.stored_size)
    except BaseException:
        final_path.unlink(missing_ok=True)
        raise
    return ArtifactInfo(
        final_path, sidecar_path_for(final_path), sealed.checksum, sealed.stored_size,
        sealed.plain_size, sealed.key_id, sealed.codec, sealed.metadata,
    )  # fmt: skip


def read_sidecar(source: ArtifactBytes) -> dict:
    """Read the sidecar of `source` (or, given a path, the sidecar file itself)."""
    if isinstance(source, Path) and source.name.endswith(SIDECAR_SUFFIX):
        source = source.with_name(source.name.removesuffix(SIDECAR_SUFFIX))
    stored = _bytes_of(source)
    name = stored.name + SIDECAR_SUFFIX
    try:
        with stored.open_sidecar() as handle:
            fields = json.loads(handle.read())
    except (FileNotFoundError, NotFoundError):
        raise NotFoundError(f"{name}: metadata sidecar does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{name}: sidecar is not valid JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise IntegrityError(f"{name}: sidecar is not a JSON object")
    return fields


def _open(stored: StoredBytes) -> BinaryIO:
    try:
        return stored.open()
    except (FileNotFoundError, NotFoundError):
        raise NotFoundError(f"{stored.name}: artifact does not exist") from None


def _codec_of(reader: ContainerReader, name: str) -> str:
    codec = codec_for_id(reader.header.codec_id)
    if codec is None:
        raise IntegrityError(f"{name}: unknown codec id {reader.header.codec_id}")
    return codec


def _container_version(handle: BinaryIO) -> int:
    start = handle.read(len(MAGIC) + 1)
    handle.seek(0)
    if len(start) > len(MAGIC) and start.startswith(MAGIC):
        return start[len(MAGIC)]
    return FORMAT_VERSION  # not a container at all: the reader names the problem


def _parse_sealed(raw: bytes | None, name: str) -> dict:
    if raw is None:
        raise IntegrityError(f"{name}: ended before its sealed metadata (truncated)")
    try:
        fields = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IntegrityError(f"{name}: authenticated metadata is not valid JSON") from None
    if not isinstance(fields, dict):
        raise IntegrityError(f"{name}: authenticated metadata is not a JSON object")
    return fields


def legacy_identity_problem(name: str, sealed: dict, identity: Mapping[str, str]) -> str | None:
    """For a version 1 artifact (no identity in its header): do the set id and source
    sealed in its metadata agree with what was asked for?"""
    claimed = {"source": str(sealed.get("source")), "set_id": str(sealed.get("set_id"))}
    asked = {k: v for k, v in identity.items() if k in claimed}
    agrees = all(claimed[k] == v for k, v in asked.items())
    if "name" in identity:
        folder, _, file_name = identity["name"].rpartition("/")
        agrees = agrees and folder == claimed["source"]
        agrees = agrees and file_name.startswith(f"{claimed['set_id']}_")
    if agrees:
        return None
    return (
        f"{name}: this is not the artifact asked for: expected {describe_identity(identity)}; "
        f"its sealed metadata claims {describe_identity(claimed)}; it was swapped or copied "
        "from elsewhere: restore the right file from another copy"
    )


# Version 1 files already read in full and found to be what was asked for, by
# (device, inode, size, mtime, what was asked): a restore opens an artifact more than once.
_legacy_checked: set[tuple] = set()


def _check_legacy(handle: BinaryIO, keyring: Keyring, expected: Expected, name: str) -> None:
    """A version 1 artifact carries no identity: read it whole once (checksum, key id,
    sealed set id and source) before a restore reads a byte of it."""
    token = _file_token(handle, expected)
    if token is not None and token in _legacy_checked:
        return
    stored = _HashingReader(handle)
    reader = ContainerReader(stored, keyring, name, expected_key_id=expected.key_id)
    for _ in reader.data_chunks():
        pass
    stored.drain()
    handle.seek(0)
    checksum = stored.sha256.hexdigest()
    if expected.checksum is not None and checksum != expected.checksum:
        raise IntegrityError(
            f"{name}: sha256 of the file is {checksum} but the catalog recorded "
            f"{expected.checksum}; it was replaced or damaged: restore it from another copy"
        )
    problem = legacy_identity_problem(name, _parse_sealed(reader.metadata, name), expected.identity)
    if problem:
        raise IntegrityError(problem)
    if token is not None:
        _legacy_checked.add(token)


def _file_token(handle: BinaryIO, expected: Expected) -> tuple | None:
    """Which file this is, for a stream over a file on this host; None for any other
    stream (a remote object is then checked each time it is opened)."""
    try:
        stat = os.fstat(handle.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, repr(expected))


def _reader(
    handle: BinaryIO, keyring: Keyring, name: str, expected: Expected | None
) -> ContainerReader:
    if expected is None:
        return ContainerReader(handle, keyring, name)
    if _container_version(handle) == 1:
        _check_legacy(handle, keyring, expected, name)
    return ContainerReader(
        handle, keyring, name,
        expected_key_id=expected.key_id, expected_identity=expected.identity,
    )  # fmt: skip


@contextlib.contextmanager
def open_container(
    source: ArtifactBytes, keyring: Keyring, expected: Expected | None = None
) -> Iterator[ContainerReader]:
    """The artifact's container, each chunk authenticated as it is read.

    With `expected`, an artifact that is not the one asked for is refused here,
    before any of its data is handed out.
    """
    stored = _bytes_of(source)
    with _open(stored) as handle:
        yield _reader(handle, keyring, stored.name, expected)


def check_expected(source: ArtifactBytes, keyring: Keyring, expected: Expected) -> None:
    """Refuse now (IntegrityError) an artifact that is not the one asked for: its
    header and first chunk for a version 2 container, all of it for version 1."""
    with open_container(source, keyring, expected):
        pass


def decompressing(reader: ContainerReader, data: DecryptedStream, name: str) -> BinaryIO:
    """The original bytes of `data`, the decrypted stream of `reader`."""
    return open_decompressor(_codec_of(reader, name), data, name)


def sealed_metadata(reader: ContainerReader, name: str) -> dict:
    """The metadata sealed at the end of the container, once every chunk has been read."""
    return _parse_sealed(reader.metadata, name)


class _Capped:
    """A plaintext stream that stops, as damage, at more bytes than were recorded; reads
    go straight to the stream under it (no copy)."""

    def __init__(self, plain: BinaryIO, limit: int, name: str):
        self._plain = plain
        self._left = limit
        self._limit = limit
        self._name = name

    def read(self, size: int = -1) -> bytes:
        wanted = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        return self._count(self._plain.read(wanted))

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        return len(self._count(view[: self._plain.readinto(view[: self._left + 1])]))

    def _count(self, data):
        if len(data) > self._left:
            raise IntegrityError(
                f"{self._name}: decompresses to more than the {self._limit} bytes recorded "
                "for it (damaged or forged); restore it from another copy"
            )
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True


def _capped(plain: BinaryIO, expected: Expected | None, name: str) -> BinaryIO:
    if expected is None or expected.plain_size is None:
        return plain
    return _Capped(plain, expected.plain_size, name)  # type: ignore[return-value]


@contextlib.contextmanager
def open_artifact_plain(
    source: ArtifactBytes, keyring: Keyring, expected: Expected | None = None
) -> Iterator[BinaryIO]:
    """Yield the original bytes of an artifact as a stream with `read(n)`.

    Damage raises IntegrityError when reached; a cut at the very end is
    reported once the stream is read to end of file. With `expected`, another
    artifact is refused before the first byte, and more bytes than the catalog
    recorded are damage.
    """
    stored = _bytes_of(source)
    with open_container(stored, keyring, expected) as reader:
        name = stored.name
        with decompressing(reader, DecryptedStream(reader), name) as plain:
            yield _capped(plain, expected, name)


def read_artifact_whole(
    source: ArtifactBytes, keyring: Keyring, expected: Expected | None = None
) -> bytes:
    """The original bytes of a small artifact (secrets, a manifest), authenticated in full
    before they are inflated, and never inflated past the size sealed inside."""
    stored = _bytes_of(source)
    name = stored.name
    with open_container(stored, keyring, expected) as reader:
        compressed = DecryptedStream(reader).read()
        sealed = sealed_metadata(reader, name)
    limit = sealed.get("plain_size")
    if not isinstance(limit, int) or limit < 0:
        raise IntegrityError(f"{name}: its sealed metadata records no plain size")
    if expected is not None and expected.plain_size not in (None, limit):
        raise IntegrityError(
            f"{name}: sealed plain size {limit} differs from the catalog's {expected.plain_size}"
        )
    with open_decompressor(_codec_of(reader, name), io.BytesIO(compressed), name) as plain:
        data = plain.read(limit + 1)
        if len(data) == limit:
            # The end of the stream checks the compressed stream's own trailer.
            data += plain.read(1)
    if len(data) != limit:
        got = "more than" if len(data) > limit else f"{len(data)} bytes,"
        raise IntegrityError(f"{name}: decompresses to {got} the {limit} bytes sealed for it")
    return data


class PlainBlocks:
    """An artifact's original bytes, block by block, each authenticated before it is
    handed out; after the last block `sealed` holds the metadata sealed inside, and
    the number of bytes that came out has been checked against it."""

    def __init__(
        self, source: ArtifactBytes, keyring: Keyring, expected: Expected | None = None
    ) -> None:
        self.stored = _bytes_of(source)
        self.keyring = keyring
        self.expected = expected
        self.sealed: dict[str, Any] = {}

    def __iter__(self) -> Iterator[bytes]:
        name = self.stored.name
        size = 0
        with open_container(self.stored, self.keyring, self.expected) as reader:
            with decompressing(reader, DecryptedStream(reader), name) as raw:
                plain = _capped(raw, self.expected, name)
                while block := plain.read(READ_SIZE):
                    size += len(block)
                    yield block
            self.sealed = sealed_metadata(reader, name)
        expected = self.sealed.get("plain_size")
        if expected not in (None, size):
            raise IntegrityError(
                f"{name}: decompressed to {size} bytes, sealed metadata says {expected}"
            )


def decrypt_artifact(
    source: ArtifactBytes, out_path: Path, keyring: Keyring, expected: Expected | None = None
) -> Path:
    """Write the artifact's compressed stream (`.gz` / `.zst`) to `out_path`.

    Nothing appears at `out_path` unless every chunk and the metadata record
    authenticated (and, with `expected`, it is the artifact asked for).
    """
    with open_container(source, keyring, expected) as reader, atomic_output(out_path) as out:
        for chunk in reader.data_chunks():
            out.write(chunk)
    return out_path


@dataclass(frozen=True)
class Resealed:
    path: Path  # where the new container waits, beside the old one
    checksum: str
    stored_size: int
    sealed: dict[str, Any]  # its sealed metadata (key id updated)


def reseal_artifact(
    source: ArtifactBytes,
    keyring: Keyring,
    expected: Expected,
    identity: Mapping[str, str],
    staged_path: Path,
) -> Resealed:
    """Seal `source`'s compressed stream again under the current key (as container version 2
    with `identity`) into `staged_path`; the caller checks it and renames it into place.

    The old artifact must be what `expected` says; the stream is carried over unchanged
    (no recompression), and its sealed metadata names the new key.
    """
    stored = _bytes_of(source)
    name = stored.name
    key = keyring.current
    with open_container(stored, keyring, expected) as reader, atomic_output(staged_path) as out:
        hashed = _HashingWriter(out)
        writer = ContainerWriter(hashed, key, reader.header.codec_id, identity=identity)
        for chunk in reader.data_chunks():
            writer.write(chunk)
        sealed = {**sealed_metadata(reader, name), "key_id": key.key_id}
        writer.finish(_encode(sealed, name))
    return Resealed(staged_path, hashed.sha256.hexdigest(), hashed.size, sealed)


def check_resealed(staged: Path, keyring: Keyring, identity: dict[str, str], name: str) -> None:
    """IntegrityError unless what reseal_artifact staged reads back whole as `identity` under
    the current key (its sidecar, written after the rename, is not asked for)."""
    expected = Expected(identity, key_id=keyring.current.key_id)
    report = verify_artifact(staged, keyring, decompress=False, expected=expected)
    problems = [problem for problem in report.problems if "sidecar" not in problem]
    if problems:
        raise IntegrityError(f"{name}: the newly sealed copy failed its check: {problems[0]}")


def sidecar_bytes(sealed: dict[str, Any], checksum: str, stored_size: int) -> bytes:
    """An artifact's sidecar: its sealed fields but sizes, and the stored file's."""
    sidecar = {k: v for k, v in sealed.items() if k not in SEALED_ONLY_FIELDS}
    sidecar |= {"stored_size": stored_size, "checksum": checksum}
    return json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n"


def write_sidecar(path: Path, sealed: dict[str, Any], checksum: str, stored_size: int) -> None:
    """The sidecar of the artifact file at `path`."""
    with atomic_output(sidecar_path_for(path)) as out:
        out.write(sidecar_bytes(sealed, checksum, stored_size))


def verify_artifact(
    source: ArtifactBytes,
    keyring: Keyring,
    *,
    decompress: bool = True,
    expected: Expected | None = None,
) -> VerifyReport:
    """Check checksum, every chunk, the compressed stream and the sidecar, and with
    `expected` that it is the artifact asked for (identity, key id, checksum).

    Without `decompress` the compressed stream is authenticated but not expanded: the
    cheap check run after every backup. Problems are reported, not raised;
    KeyNotAvailableError is raised when the artifact's key is not in `keyring`.
    """
    stored_bytes = _bytes_of(source)
    name = stored_bytes.name
    problems: list[str] = []
    try:
        sidecar: dict | None = read_sidecar(stored_bytes)
    except (NotFoundError, IntegrityError) as exc:
        problems.append(str(exc))
        sidecar = None
    authenticated = None
    plain_size = chunks = 0
    with _open(stored_bytes) as handle:
        stored = _HashingReader(handle)
        reader = None
        try:
            reader = ContainerReader(
                stored, keyring, name,
                expected_key_id=expected.key_id if expected else None,
                expected_identity=expected.identity if expected else None,
            )  # fmt: skip
            data = DecryptedStream(reader)
            if decompress:
                with open_decompressor(_codec_of(reader, name), data, name) as plain:
                    while block := plain.read(READ_SIZE):
                        plain_size += len(block)
            else:
                while data.read(READ_SIZE):
                    pass
            authenticated = json.loads(reader.metadata or b"")
            if not decompress:
                plain_size = authenticated.get("plain_size", 0)
            problems += _size_problems(name, authenticated, plain_size, data.size)
        except IntegrityError as exc:
            problems.append(str(exc))
        except json.JSONDecodeError:
            problems.append(f"{name}: authenticated metadata is not valid JSON")
        chunks = reader.chunk_count if reader is not None else 0
        stored.drain()
    checksum = stored.sha256.hexdigest()
    if expected is not None:
        problems += _expected_problems(name, expected, reader, authenticated, checksum)
    if sidecar is not None:
        problems += _sidecar_problems(name, sidecar, authenticated, checksum, stored.size)
    return VerifyReport(not problems, problems, checksum, chunks, plain_size)


def _expected_problems(
    name: str,
    expected: Expected,
    reader: ContainerReader | None,
    authenticated: dict | None,
    checksum: str,
) -> list[str]:
    problems = []
    if expected.checksum is not None and checksum != expected.checksum:
        problems.append(
            f"{name}: sha256 of the file is {checksum} but the catalog recorded "
            f"{expected.checksum} (replaced or damaged)"
        )
    legacy = reader is not None and reader.header.version == 1
    if legacy and isinstance(authenticated, dict):
        problem = legacy_identity_problem(name, authenticated, expected.identity)
        problems += [problem] if problem else []
    return problems


def _size_problems(name: str, authenticated: dict, plain: int, compressed: int) -> list[str]:
    expected_plain = authenticated.get("plain_size")
    expected_compressed = authenticated.get("compressed_size")
    problems = []
    if expected_plain != plain:
        problems.append(f"{name}: decompressed to {plain} bytes, expected {expected_plain}")
    if expected_compressed != compressed:
        problems.append(
            f"{name}: compressed stream is {compressed} bytes, expected {expected_compressed}"
        )
    return problems


def _sidecar_problems(
    name: str, sidecar: dict, authenticated: dict | None, checksum: str, stored_size: int
) -> list[str]:
    problems = []
    if sidecar.get("checksum") != checksum:
        problems.append(
            f"{name}: sha256 of the file is {checksum} but the sidecar records "
            f"{sidecar.get('checksum')} (file changed or sidecar edited)"
        )
    if sidecar.get("stored_size") != stored_size:
        recorded = sidecar.get("stored_size")
        problems.append(f"{name}: file is {stored_size} bytes but the sidecar records {recorded}")
    if authenticated is not None:
        claimed = {k: v for k, v in sidecar.items() if k not in STORED_FIELDS}
        # Sizes are sealed only (older sidecars still carry them, and are compared).
        authenticated = {
            k: v for k, v in authenticated.items() if k not in SEALED_ONLY_FIELDS or k in claimed
        }
        differing = sorted(
            key for key in claimed.keys() | authenticated.keys()
            if key not in claimed or key not in authenticated or claimed[key] != authenticated[key]
        )  # fmt: skip
        if differing:
            problems.append(
                f"{name}: sidecar disagrees with the authenticated metadata on "
                f"{', '.join(differing)} (sidecar edited or forged)"
            )
    return problems


def describe_artifact(source: ArtifactBytes, keyring: Keyring) -> dict:
    """What an artifact says it is: the metadata sealed in its last record, authenticated
    with its header, read without its data (its data is checked when it is read)."""
    stored = _bytes_of(source)
    with _open(stored) as handle:
        return _parse_sealed(read_metadata_record(handle, keyring, stored.name)[1], stored.name)


def read_sealed_metadata(
    source: ArtifactBytes, keyring: Keyring, expected: Expected | None = None
) -> dict:
    """The metadata sealed inside an artifact, for a file that arrived without its sidecar.

    Every chunk is authenticated on the way, so the answer is trustworthy.
    """
    stored = _bytes_of(source)
    with open_container(stored, keyring, expected) as reader:
        for _ in reader.data_chunks():
            pass
    return sealed_metadata(reader, stored.name)
