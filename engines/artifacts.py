"""Artifacts: a source stream compressed, sealed, hashed and written crash-safely.

An artifact `x.dump.gz.enc` is the encrypted container of a standard `.gz`
(or `.zst`) stream. Beside it, `x.dump.gz.enc.metadata.json` (the sidecar)
describes it; the sidecar is written last, so its presence marks a complete
artifact. The container ends with an authenticated copy of the sidecar
(without the two fields that describe the stored file itself), so an edited
sidecar is caught by `verify_artifact`.
"""

import contextlib
import functools
import hashlib
import json
import queue
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, BinaryIO

from engines.compression import (
    CODEC_IDS,
    CODEC_SUFFIXES,
    check_codec,
    codec_for_id,
    make_compressor,
    open_decompressor,
)
from engines.crypto import (
    DEFAULT_CHUNK_SIZE,
    ContainerReader,
    ContainerWriter,
    DecryptedStream,
    Keyring,
)
from engines.errors import IntegrityError, JobCancelledError, NotFoundError
from engines.fsutil import atomic_output

FORMAT = "jarvis-artifact/1"
SIDECAR_SUFFIX = ".metadata.json"
READ_SIZE = 1024 * 1024
# Sidecar fields that describe the stored file, which cannot be inside it.
STORED_FIELDS = ("stored_size", "checksum")


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


def write_artifact(
    source: Iterable[bytes] | BinaryIO,
    final_path: Path,
    keyring: Keyring,
    metadata: dict | Callable[[], dict],
    *,
    codec: str = "gzip",
    level: int | None = None,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ArtifactInfo:
    """Compress, encrypt and hash `source` into `final_path`, then write its sidecar.

    A callable `metadata` is evaluated once the source is exhausted. On any
    error or cancellation nothing appears under `final_path`.
    """
    check_codec(codec)
    name = display_name(final_path)
    key = keyring.current
    with atomic_output(final_path) as handle:
        stored = _HashingWriter(handle)
        container = ContainerWriter(stored, key, CODEC_IDS[codec], chunk_size)
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
        fields = _authenticated_metadata(
            metadata, codec, key.key_id, plain_size, container.plain_size
        )
        container.finish(_encode(fields, name))
    sidecar = {**fields, "stored_size": stored.size, "checksum": stored.sha256.hexdigest()}
    sidecar_path = sidecar_path_for(final_path)
    try:
        with atomic_output(sidecar_path) as out:
            out.write(json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n")
    except BaseException:
        final_path.unlink(missing_ok=True)
        raise
    return ArtifactInfo(
        final_path, sidecar_path, sidecar["checksum"], stored.size, plain_size,
        key.key_id, codec, sidecar,
    )  # fmt: skip


def read_sidecar(path: Path) -> dict:
    """Read the sidecar at `path` (the sidecar itself or the artifact it describes)."""
    sidecar = path if path.name.endswith(SIDECAR_SUFFIX) else sidecar_path_for(path)
    name = display_name(sidecar)
    try:
        fields = json.loads(sidecar.read_bytes())
    except FileNotFoundError:
        raise NotFoundError(f"{name}: metadata sidecar does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{name}: sidecar is not valid JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise IntegrityError(f"{name}: sidecar is not a JSON object")
    return fields


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise NotFoundError(f"{display_name(path)}: artifact does not exist") from None


def _codec_of(reader: ContainerReader, name: str) -> str:
    codec = codec_for_id(reader.header.codec_id)
    if codec is None:
        raise IntegrityError(f"{name}: unknown codec id {reader.header.codec_id}")
    return codec


@contextlib.contextmanager
def open_container(path: Path, keyring: Keyring) -> Iterator[ContainerReader]:
    """The artifact's container, each chunk authenticated as it is read."""
    with _open(path) as handle:
        yield ContainerReader(handle, keyring, display_name(path))


def decompressing(reader: ContainerReader, data: DecryptedStream, name: str) -> BinaryIO:
    """The original bytes of `data`, the decrypted stream of `reader`."""
    return open_decompressor(_codec_of(reader, name), data, name)


def sealed_metadata(reader: ContainerReader, name: str) -> dict:
    """The metadata sealed at the end of the container, once every chunk has been read."""
    if reader.metadata is None:
        raise IntegrityError(f"{name}: ended before its sealed metadata (truncated)")
    try:
        return json.loads(reader.metadata)
    except json.JSONDecodeError:
        raise IntegrityError(f"{name}: authenticated metadata is not valid JSON") from None


@contextlib.contextmanager
def open_artifact_plain(path: Path, keyring: Keyring) -> Iterator[BinaryIO]:
    """Yield the original bytes of an artifact as a stream with `read(n)`.

    Damage raises IntegrityError when reached; a cut at the very end is
    reported once the stream is read to end of file.
    """
    with open_container(path, keyring) as reader:
        name = display_name(path)
        with decompressing(reader, DecryptedStream(reader), name) as plain:
            yield plain


class PlainBlocks:
    """An artifact's original bytes, block by block, each authenticated before it is
    handed out; after the last block `sealed` holds the metadata sealed inside, and
    the number of bytes that came out has been checked against it."""

    def __init__(self, path: Path, keyring: Keyring):
        self.path = path
        self.keyring = keyring
        self.sealed: dict[str, Any] = {}

    def __iter__(self) -> Iterator[bytes]:
        name = display_name(self.path)
        size = 0
        with open_container(self.path, self.keyring) as reader:
            with decompressing(reader, DecryptedStream(reader), name) as plain:
                while block := plain.read(READ_SIZE):
                    size += len(block)
                    yield block
            self.sealed = sealed_metadata(reader, name)
        expected = self.sealed.get("plain_size")
        if expected not in (None, size):
            raise IntegrityError(
                f"{name}: decompressed to {size} bytes, sealed metadata says {expected}"
            )


def decrypt_artifact(path: Path, out_path: Path, keyring: Keyring) -> Path:
    """Write the artifact's compressed stream (`.gz` / `.zst`) to `out_path`.

    Nothing appears at `out_path` unless every chunk and the metadata record
    authenticated.
    """
    with _open(path) as handle:
        reader = ContainerReader(handle, keyring, display_name(path))
        with atomic_output(out_path) as out:
            for chunk in reader.data_chunks():
                out.write(chunk)
    return out_path


def verify_artifact(path: Path, keyring: Keyring, *, decompress: bool = True) -> VerifyReport:
    """Check checksum, every chunk, the compressed stream and the sidecar.

    Without `decompress` the compressed stream is authenticated but not expanded: the
    cheap check run after every backup. Problems are reported, not raised;
    KeyNotAvailableError is raised when the artifact's key is not in `keyring`.
    """
    name = display_name(path)
    problems: list[str] = []
    try:
        sidecar: dict | None = read_sidecar(path)
    except (NotFoundError, IntegrityError) as exc:
        problems.append(str(exc))
        sidecar = None
    authenticated = None
    plain_size = chunks = 0
    with _open(path) as handle:
        stored = _HashingReader(handle)
        reader = None
        try:
            reader = ContainerReader(stored, keyring, name)
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
    if sidecar is not None:
        problems += _sidecar_problems(name, sidecar, authenticated, checksum, stored.size)
    return VerifyReport(not problems, problems, checksum, chunks, plain_size)


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


def read_sealed_metadata(path: Path, keyring: Keyring) -> dict:
    """The metadata sealed inside an artifact, for a file that arrived without its sidecar.

    Every chunk is authenticated on the way, so the answer is trustworthy.
    """
    name = display_name(path)
    with _open(path) as handle:
        reader = ContainerReader(handle, keyring, name)
        for _ in reader.data_chunks():
            pass
    try:
        return json.loads(reader.metadata or b"")
    except json.JSONDecodeError:
        raise IntegrityError(f"{name}: authenticated metadata is not valid JSON") from None
