"""Restoring a JSON export in two passes over the artifact: check it all, then write.

Pass 1 reads the whole artifact (every chunk authenticated, every line parsed and
compiled to its Redis commands, counted) and keeps nothing; keys already expired are
dropped and counted there. Only when pass 1 succeeded may anything touch the target, so
`--flush` never empties a database for an export that turns out damaged. Pass 2 reads
the same artifact again (the caller checks it is the same one) and compiles it the same
way, each batch sent as it is made and before the replies of the one before are read;
unless --replace or --flush, it first asks which keys exist (EXISTS) and leaves those
out, reporting them as conflicts. The compiling is done in C (_json_to_resp.c) for the
lines in the exporter's own shape; without it, a big export is compiled a block at a
time in worker processes while this one decrypts and decompresses, the outcomes merged
in order (json_blocks).
"""

import gc
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engines.redis.json_blocks import (
    BlockOutcome,
    CompileOptions,
    compile_block,
    compile_block_alone,
    start_worker,
)
from engines.redis.json_compile import compile_line
from engines.redis.json_reader import JsonExportReader
from engines.redis.json_spool import FIRST, Batch, BatchSink, BatchSpool, Frame, read_batches
from engines.redis.native import json_to_resp
from engines.redis.resp import encode_command
from engines.redis.writer import KeyWrite, PipelinedWriter

__all__ = ["compile_export", "compile_line"]

# --- pass 1: records to RESP --------------------------------------------------------------


WORKERS = 2
WORKER_MIN_BYTES = 32 << 20  # a smaller export is compiled before workers would have started
_AHEAD = 2  # blocks handed to each worker before the first outcome is taken


@dataclass
class CompileResult:
    reader: JsonExportReader
    expired: int  # keys dropped because their expiry had passed at `now_ms`


def workers_for(plain_size: int) -> int:
    """Worker processes for compiling in Python: none for a small export or a single core,
    and none with the C compiler, which compiles faster than blocks are handed over (1M
    keys: 1.7 s alone, 1.9 s with two workers) and leaves the other core to the server."""
    if json_to_resp is not None:
        return 0
    cores = os.cpu_count() or 1
    return min(WORKERS, cores) if plain_size >= WORKER_MIN_BYTES and cores > 1 else 0


def compile_export(plain: BinaryIO, sink: BatchSink, *, work_folder: Path, now_ms: int,
                   only_db: int | None, delete_first: bool, workers: int = 0,
                   between_blocks: Callable[[], None] = lambda: None) -> CompileResult:  # fmt: skip
    """Parse all of `plain` into batches for `sink`, in order; the reader holds header,
    trailer, counts.

    With `workers`, blocks are compiled in that many processes (a few blocks ahead, so
    memory stays flat) and their outcomes merged here in order; their batches pass through
    files in `work_folder`. `between_blocks` runs before each block: a cancellation check
    raises there, and the workers are stopped."""
    settings = CompileOptions(now_ms, only_db, delete_first)
    merger = _Merger(JsonExportReader(plain, now_ms=now_ms), sink, settings, work_folder)
    with _collector_paused(), _worker_pool(workers) as pool:
        pending: deque[tuple[int, bytes, Future]] = deque()
        for number, block in merger.reader.numbered_blocks():
            between_blocks()
            if pool is None or number == 0:
                while pending:
                    merger.take(*pending.popleft())
                merger.compile_here(number, block)
                continue
            part = merger.part_path(number)
            result = pool.submit(compile_block_alone, number, block, settings, part)
            pending.append((number, block, result))
            if len(pending) > _AHEAD * workers:
                merger.take(*pending.popleft())
        while pending:
            merger.take(*pending.popleft())
    merger.reader.finish()
    return CompileResult(merger.reader, merger.expired)


def discard(batch: Batch) -> None:
    """The sink of pass 1, which only checks."""


class _Merger:
    """The blocks' outcomes, in order, into the sink and the one reader of the export."""

    def __init__(self, reader: JsonExportReader, sink: BatchSink, settings: CompileOptions,
                 work_folder: Path):  # fmt: skip
        self.reader = reader
        self.sink = sink
        self.settings = settings
        self.work_folder = work_folder
        self.expired = 0
        self.skipping = False  # inside a key whose expiry has passed

    def compile_here(self, number: int, block: bytes) -> None:
        spool = BatchSpool(self.sink, delete_first=self.settings.delete_first)
        expired, self.skipping = compile_block(self.reader, spool, number, block,
                                               self.settings, self.skipping)  # fmt: skip
        spool.flush()
        self.expired += expired

    def part_path(self, number: int) -> Path:
        """Where a worker puts the batches of the block after line `number`."""
        return self.work_folder / f"block-{number}.batches"

    def take(self, number: int, block: bytes, result: Future) -> None:
        part = self.part_path(number)
        try:
            if self.reader.trailer is not None or self.reader.continuing:
                wait([result])
                self.compile_here(number, block)  # the worker's fresh start was wrong
                return
            outcome: BlockOutcome = result.result()  # a worker's error, or its death, raised
            for batch in read_batches(part):
                self.sink(batch)
        finally:
            part.unlink(missing_ok=True)
        self.reader.take_over(outcome.reader)
        self.expired += outcome.expired
        self.skipping = outcome.skipping


@contextmanager
def _worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    if not workers:
        yield None
        return
    # Forking is instant and the workers have every module already; with other threads
    # running (a lock one holds would stay held in the child) a fork server is safer.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker)
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing makes millions of short-lived lists and dicts and no reference cycles; the
    cyclic collector would walk them over and over for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- pass 2: batches to the target --------------------------------------------------------


SEEN_FILTER_BYTES = 1 << 24  # 2**27 bits: about one needless DEL per 5,000 keys at 1M keys


class FrameWriter:
    """Pass 2. With `dry_run` only the conflict checks run (EXISTS); nothing is written.

    `find_repeats` is for a target emptied by --flush, whose batches have no DEL before
    their aggregates: an aggregate key the export holds twice (SCAN can list a key twice,
    its type changed meanwhile) gets a DEL before its second start, found with a Bloom
    filter of the keys started so far (memory stays flat; a false alarm costs one
    needless DEL)."""

    def __init__(self, writer: PipelinedWriter, *, check_conflicts: bool, dry_run: bool,
                 find_repeats: bool = False):  # fmt: skip
        self.writer = writer
        self.check_conflicts = check_conflicts
        self.dry_run = dry_run
        self._seen = bytearray(SEEN_FILTER_BYTES) if find_repeats and json_to_resp else None
        self._skipping = False  # the key of the current multi-line record was skipped

    def write(self, batch: Batch) -> None:
        """A sink for compile_export: send `batch` (its replies are read with the next)."""
        if self.check_conflicts or self.dry_run:
            self._batch(list(batch.each_frame()))
            return
        # Nothing to leave out: the compiled commands go as they are, unless a key the
        # export holds twice needs deleting first.
        repeats = self._repeats(batch)
        frames: Iterable[Frame] = (
            batch.each_frame() if not repeats else self._deleting_first(batch, repeats)
        )
        commands = batch.commands if not repeats else b"".join(f.commands for f in frames)
        self.writer.write_batch(batch.db, commands, batch.replies + len(repeats), batch.keys,
                                lambda frames=frames: _key_writes(frames))  # fmt: skip

    def finish(self) -> None:
        self.writer.drain()

    def _repeats(self, batch: Batch) -> list[int]:
        if self._seen is None:
            return []
        assert json_to_resp is not None
        return json_to_resp.seen_before(self._seen, batch.db, batch.index, batch.frames)

    @staticmethod
    def _deleting_first(batch: Batch, repeats: list[int]) -> list[Frame]:
        frames = list(batch.each_frame())
        for number in repeats:
            frame = frames[number]
            frame.commands = encode_command("DEL", frame.key) + frame.commands
            frame.count += 1
        return frames

    def _existing(self, db: int, batch: list[Frame]) -> dict[bytes, bool]:
        keys = [f.key for f in batch if f.flags & FIRST]
        if not keys:
            return {}
        self.writer.select(db)
        return dict(zip(keys, self.writer.existing(keys), strict=True))

    def _batch(self, batch: list[Frame]) -> None:
        db = batch[0].db
        tally = self.writer.tally
        exists = self._existing(db, batch)
        items: list[KeyWrite] = []
        counted: list[bool] = []
        for frame in batch:
            if frame.flags & FIRST:
                self._skipping = False
                if exists.get(frame.key) and self.check_conflicts:
                    tally.conflict(db, frame.key)
                    self._skipping = True
                elif self.dry_run:
                    tally.written[db] += 1
                    if exists.get(frame.key):
                        tally.conflict(db, frame.key)  # would be overwritten
            if self._skipping or self.dry_run or not frame.count:
                continue
            items.append(KeyWrite(frame.key, frame.commands, frame.count))
            counted.append(bool(frame.flags & FIRST))
        # First pieces count as keys; later pieces of big keys follow them.
        self.writer.write(db, [item for item, first in zip(items, counted, strict=True) if first])
        later = [item for item, first in zip(items, counted, strict=True) if not first]
        self.writer.write(db, later, count_keys=False)


def _key_writes(frames: Iterable[Frame]) -> list[tuple[KeyWrite, bool]]:
    """A batch's commands per key piece, with whether the piece counts as a key."""
    return [
        (KeyWrite(frame.key, frame.commands, frame.count), bool(frame.flags & FIRST))
        for frame in frames
    ]
