"""Pass 1 of a JSON restore, a block of lines at a time: parsed, checked, compiled, spooled.

A block can be compiled on its own, in a worker process, when it starts on a new key:
the worker gets a fresh reader, writes the block's batches to a file of their own and
returns the counts and the reader's state at its end. Whoever merges the outcomes in
order (json_import) checks that the assumption held, and compiles the block again
itself when it did not (the block follows an unfinished key, or the end record).
"""

import gc
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engines.redis.json_compile import SLOW_ERRORS, Slow, compile_document, compile_line
from engines.redis.json_format import TYPES
from engines.redis.json_reader import JsonExportReader
from engines.redis.json_spool import (
    AGGREGATE,
    BATCH_BYTES,
    BATCH_KEYS,
    FINAL,
    FIRST,
    BatchSpool,
    batch_writer,
)
from engines.redis.native import json_to_resp


@dataclass
class CompileOptions:
    now_ms: int
    only_db: int | None
    delete_first: bool


@dataclass
class BlockOutcome:
    reader: JsonExportReader  # counts of the block, and its state at the block's end
    expired: int  # keys dropped because their expiry had passed
    skipping: bool  # the block ends inside an expired key


def compile_block(reader: JsonExportReader, spool: BatchSpool, number: int, block: bytes,
                  settings: CompileOptions, skipping: bool) -> tuple[int, bool]:  # fmt: skip
    """Every line of `block` (the line before it numbered `number`) into `spool`; the
    keys dropped as expired, and whether the block ends inside one.

    Runs of whole-key lines in the exporter's own shape go to the C compiler a batch at a
    time; each line it does not take, and every line when it is not built, goes the
    Python way (`compile_lines`)."""
    if json_to_resp is None:
        return compile_lines(reader, spool, number, block, settings, skipping)
    only_db = -1 if settings.only_db is None else settings.only_db
    expired = start = 0
    while start < len(block):
        if number and reader.trailer is None and not reader.continuing:
            (start, lines, db, frames, replies, commands, index, kind_counts, with_ttl, past,
             run_expired) = json_to_resp.compile_run(
                block, start, settings.now_ms, only_db, settings.delete_first, BATCH_KEYS,
                BATCH_BYTES)  # fmt: skip
            if lines:
                reader.counted(dict(zip(((db, kind) for kind in TYPES), kind_counts,
                                        strict=True)), with_ttl, past)  # fmt: skip
                if frames:
                    spool.add_batch(db, frames, replies, commands, index)
                number += lines
                expired += run_expired
                skipping = False
                continue
        end = block.index(b"\n", start) + 1
        line_expired, skipping = compile_lines(reader, spool, number, block[start:end],
                                               settings, skipping)  # fmt: skip
        expired += line_expired
        number += 1
        start = end
    return expired, skipping


def compile_lines(reader: JsonExportReader, spool: BatchSpool, number: int, block: bytes,
                  settings: CompileOptions, skipping: bool) -> tuple[int, bool]:  # fmt: skip
    """`compile_block` in Python. Whole keys in one line go the fast way
    (compile_document), counted a block at a time; any other line goes through the full
    parser and the reader's `follow`, line by line."""
    now_ms, only_db, delete_first = settings.now_ms, settings.only_db, settings.delete_first
    add, add_compiled = spool.add, spool.add_compiled
    expired = 0
    for number, lines, documents in reader.block_documents(number, block):  # noqa: B020
        kinds: list[tuple[int, str]] = []  # of the keys taken the fast way
        with_ttl = past = 0
        continuing = reader.continuing
        for raw, document in zip(lines, documents, strict=True):
            number += 1
            try:
                if continuing:
                    raise Slow  # a later line of a key: the reader follows it
                db, key, kind, expires, data, count = compile_document(document, delete_first)
            except SLOW_ERRORS:
                reader.counted(Counter(kinds), with_ttl, past)
                kinds, with_ttl, past = [], 0, 0
                # The full parser sees the line as the standard json module reads it.
                compiled = compile_line(json.loads(raw), number)
                db, key, kind, expires, part, more, commands = compiled
                reader.follow(number, db, key, kind, expires, part, more)
                continuing = more
                if only_db is not None and db != only_db:
                    continue
                if part == 0:
                    skipping = expires is not None and 0 <= expires <= now_ms
                    expired += skipping
                if not skipping:
                    add(db, key, kind, expires, part, more, commands)
                continue
            kinds.append((db, kind))
            if expires is not None:
                with_ttl += 1
                if expires <= now_ms:
                    past += 1
                    if expires >= 0 and only_db in (None, db):
                        expired += 1
                        continue
            if only_db is None or db == only_db:
                flags = FIRST | FINAL if kind == "string" else FIRST | FINAL | AGGREGATE
                add_compiled(db, key, flags, data, count)
        reader.counted(Counter(kinds), with_ttl, past)
    return expired, skipping


def compile_block_alone(
    number: int, block: bytes, settings: CompileOptions, part: Path
) -> BlockOutcome:
    """`compile_block` as if the block started the export's keys (in a worker process);
    its batches go to the file `part` (a file, not the pipe back: that costs less)."""
    reader = JsonExportReader(None, now_ms=settings.now_ms)
    with open(part, "xb") as out:
        spool = BatchSpool(batch_writer(out), delete_first=settings.delete_first)
        expired, skipping = compile_block(reader, spool, number, block, settings, False)
        spool.flush()
    return BlockOutcome(reader, expired, skipping)


def start_worker() -> None:
    """Parsing makes millions of short-lived lists and dicts and no reference cycles; the
    cyclic collector would walk them over and over for nothing."""
    gc.disable()
