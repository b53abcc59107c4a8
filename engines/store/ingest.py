"""Reading files into the store: chunks named, deduplicated, compressed and sealed.

The calling thread reads files and cuts them into chunks; batches of chunks go
to worker threads, which compute the chunk ids, skip chunks the repository (or
this run) already has, compress and seal the rest. Results are taken back in
submission order, so each file's chunk list is in order and packs fill
sequentially. At most a few batches are in flight, which bounds memory.
"""

import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from engines.destinations.base import Destination
from engines.pipeline.compression import default_threads
from engines.pipeline.crypto import MasterKey
from engines.store.blobs import compress_chunk
from engines.store.chunker import SINGLE_CHUNK_LIMIT, Chunker
from engines.store.index import Index
from engines.store.keys import StoreKeys
from engines.store.packs import PackSealer, PackWriter
from engines.store.snapshots import Entry, shown
from engines.store.walker import UNREADABLE, VANISHED, Report

BATCH_BYTES = 2 * 1024 * 1024
BATCH_CHUNKS = 256
CHANGED = "changed"
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class IngestStats:
    files_read: int = 0
    bytes_read: int = 0
    chunks_new: int = 0
    bytes_new: int = 0


Chunk = tuple[Entry, bytes]
Result = tuple[Entry, bytes, bytes | None, int]  # entry, chunk id, sealed blob or None, size


class Ingest:
    def __init__(
        self,
        repository: Destination,
        key: MasterKey,
        keys: StoreKeys,
        index: Index,
        *,
        codec: str,
        level: int,
        report: Report,
        progress: Callable[[int], None],
        threads: int | None = None,
    ):
        self._keys = keys
        self._known = index.locations
        self._claimed: set[bytes] = set()
        self._claim_lock = threading.Lock()
        self._codec = codec
        self._level = level
        self._report = report
        self._progress = progress
        self._sealer = PackSealer(key)
        self.packs = PackWriter(repository, self._sealer)
        threads = threads or default_threads()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="chunks")
        self._max_in_flight = 2 * threads + 2
        self._in_flight: deque[Future[list[Result]]] = deque()
        self._batch: list[Chunk] = []
        self._batch_bytes = 0
        self._chunker: Chunker | None = None
        self.failed: set[int] = set()  # id() of entries that could not be read
        self.stats = IngestStats()

    # -- reading (calling thread) -------------------------------------------------------

    def add_file(self, entry: Entry, absolute: str) -> None:
        """Read `absolute` into `entry`'s chunks; problems are reported, not raised."""
        try:
            fd = _open_for_reading(absolute)
        except FileNotFoundError:
            self._fail(entry, VANISHED, f"{shown(absolute)}: vanished before it could be read")
            return
        except OSError as exc:
            self._fail(entry, UNREADABLE, f"{shown(absolute)}: cannot read ({exc.strerror})")
            return
        with open(fd, "rb", buffering=0, closefd=True) as handle:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                self._fail(
                    entry, VANISHED, f"{shown(absolute)}: replaced by a non-file during the walk"
                )
                return
            _take_stat(entry, before)
            try:
                read = self._read_chunks(entry, handle, before.st_size)
            except OSError as exc:
                self._fail(entry, UNREADABLE, f"{shown(absolute)}: read failed ({exc.strerror})")
                return
            after = os.fstat(fd)
        self.stats.files_read += 1
        if (
            read != before.st_size
            or after.st_size != before.st_size
            or after.st_mtime_ns != before.st_mtime_ns
        ):
            entry.changed = True
            self._report(
                CHANGED,
                f"{shown(absolute)}: changed while it was being read (size or mtime moved); "
                "stored as read and marked changed in the snapshot",
            )

    def _read_chunks(self, entry: Entry, handle, size: int) -> int:
        read = 0
        first = handle.read(SINGLE_CHUNK_LIMIT + 1) if size <= SINGLE_CHUNK_LIMIT else b""
        pieces: Iterable[bytes]
        if len(first) <= SINGLE_CHUNK_LIMIT and size <= SINGLE_CHUNK_LIMIT:
            pieces = [first] if first else []
        else:  # a large file, or a small one that grew while it was opened
            if self._chunker is None:
                self._chunker = Chunker(self._keys.gear_seed)
            pieces = self._chunker.chunks(_prefixed(first, handle.read))
        for piece in pieces:
            self._add_chunk(entry, piece)
            read += len(piece)
            self.stats.bytes_read += len(piece)
            self._progress(self.stats.bytes_read)
        return read

    def _fail(self, entry: Entry, kind: str, message: str) -> None:
        self.failed.add(id(entry))
        self._report(kind, message)

    def _add_chunk(self, entry: Entry, data: bytes) -> None:
        self._batch.append((entry, data))
        self._batch_bytes += len(data)
        if self._batch_bytes >= BATCH_BYTES or len(self._batch) >= BATCH_CHUNKS:
            self._submit()

    def _submit(self) -> None:
        if not self._batch:
            return
        while len(self._in_flight) >= self._max_in_flight:
            self._collect(self._in_flight.popleft())
        self._in_flight.append(self._pool.submit(self._seal_batch, self._batch))
        self._batch, self._batch_bytes = [], 0
        while self._in_flight and self._in_flight[0].done():
            self._collect(self._in_flight.popleft())

    def _collect(self, future: Future[list[Result]]) -> None:
        for entry, chunk_id, sealed, size in future.result():
            entry.chunks += chunk_id.hex()
            if sealed is not None:
                self.packs.add(chunk_id, sealed, size)
                self.stats.chunks_new += 1
                self.stats.bytes_new += size

    def finish(self) -> None:
        """Wait for every chunk and close the last pack."""
        self._submit()
        while self._in_flight:
            self._collect(self._in_flight.popleft())
        self.packs.finish()
        self._pool.shutdown()

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.packs.abort()

    # -- worker threads -----------------------------------------------------------------

    def _seal_batch(self, batch: list[Chunk]) -> list[Result]:
        results: list[Result] = []
        for entry, data in batch:
            chunk_id = self._keys.chunk_id(data)
            with self._claim_lock:
                new = chunk_id not in self._known and chunk_id not in self._claimed
                if new:
                    self._claimed.add(chunk_id)
            sealed = (
                self._sealer.seal(chunk_id, compress_chunk(data, self._codec, self._level))
                if new
                else None
            )
            results.append((entry, chunk_id, sealed, len(data)))
        return results


def _prefixed(first: bytes, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """`read`, after handing out `first` (bytes already read from the same file)."""
    pending = [first] if first else []

    def read_more(size: int) -> bytes:
        return pending.pop() if pending else read(size)

    return read_more


def _open_for_reading(path: str) -> int:
    try:
        # O_NOATIME keeps a backup from touching every file's atime, where allowed.
        return os.open(path, _READ_FLAGS | os.O_NOATIME)
    except PermissionError:
        return os.open(path, _READ_FLAGS)


def _take_stat(entry: Entry, info: os.stat_result) -> None:
    entry.size = info.st_size
    entry.mtime_ns = info.st_mtime_ns
    entry.ctime_ns = info.st_ctime_ns
    entry.inode = info.st_ino
