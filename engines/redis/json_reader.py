"""Reading a JSON export back: every line parsed and checked, values decoded to bytes.

Used by verify (parse everything, compare the counts) and by the restore (which turns
each record into commands). Errors name the line, so a damaged export is easy to find.
"""

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engines.redis.json_format import FORMAT, TYPES, JsonFormatError, decode_bytes


@dataclass
class KeyRecord:
    db: int
    key: bytes
    type: str
    value: Any  # bytes | list[bytes] | list[tuple[bytes, bytes]] | StreamValue
    expires_at_ms: int | None
    part: int  # 0 for the first (often only) line of a key
    more: bool  # further lines of this key follow


@dataclass
class StreamGroup:
    name: bytes
    last_delivered_id: bytes
    entries_read: int | None


@dataclass
class StreamValue:
    entries: list[tuple[bytes, list[bytes]]]
    last_id: bytes | None = None
    entries_added: int | None = None
    max_deleted_id: bytes | None = None
    groups: list[StreamGroup] = field(default_factory=list)


@dataclass
class ReadCounts:
    per_db_type: dict[int, Counter] = field(default_factory=dict)
    with_ttl: int = 0
    expired: int = 0  # expiry before `now_ms`, when given

    def add(self, db: int, kind: str, expires: int | None, now_ms: int | None) -> None:
        self.per_db_type.setdefault(db, Counter())[kind] += 1
        if expires is not None:
            self.with_ttl += 1
            if now_ms is not None and expires <= now_ms:
                self.expired += 1

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.per_db_type.values())

    def keys_per_db(self) -> dict[str, int]:
        return {str(db): sum(c.values()) for db, c in sorted(self.per_db_type.items())}

    def keys_per_type(self) -> dict[str, int]:
        total: Counter = Counter()
        for types in self.per_db_type.values():
            total.update(types)
        return dict(sorted(total.items()))


def _require(condition: bool, line: int, what: str) -> None:
    if not condition:
        raise JsonFormatError(f"line {line}: {what}")


def _texts(value: Any, line: int) -> list[bytes]:
    _require(isinstance(value, list), line, "expected a list of values")
    return [decode_bytes(item) for item in value]


def _pairs(value: Any, line: int, *, scores: bool = False) -> list[tuple[bytes, bytes]]:
    _require(isinstance(value, list), line, "expected a list of pairs")
    pairs = []
    for item in value:
        _require(isinstance(item, list) and len(item) == 2, line, "expected [name, value] pairs")
        if scores:
            _require(isinstance(item[1], str), line, "a sorted-set score must be a string")
            try:
                score = float(item[1])
            except ValueError:
                raise JsonFormatError(f"line {line}: score {item[1]!r} is not a number") from None
            _require(not math.isnan(score), line, "a sorted-set score cannot be NaN")
            pairs.append((decode_bytes(item[0]), item[1].encode()))
        else:
            pairs.append((decode_bytes(item[0]), decode_bytes(item[1])))
    return pairs


def _stream_id(value: Any, line: int) -> bytes:
    _require(isinstance(value, str) and value.count("-") == 1, line, f"bad stream id {value!r}")
    ms, seq = value.split("-")
    _require(ms.isdigit() and seq.isdigit(), line, f"bad stream id {value!r}")
    return value.encode()


def _stream(value: Any, line: int) -> StreamValue:
    _require(isinstance(value, dict) and isinstance(value.get("entries"), list), line,
             "a stream value needs an entries list")  # fmt: skip
    entries = []
    for entry in value["entries"]:
        _require(isinstance(entry, list) and len(entry) == 2, line, "expected [id, fields]")
        fields = _texts(entry[1], line)
        _require(len(fields) % 2 == 0 and fields, line, "stream fields come in pairs")
        entries.append((_stream_id(entry[0], line), fields))
    stream = StreamValue(entries)
    if value.get("last_id") is not None:
        stream.last_id = _stream_id(value["last_id"], line)
    if value.get("max_deleted_id") is not None:
        stream.max_deleted_id = _stream_id(value["max_deleted_id"], line)
    added = value.get("entries_added")
    _require(added is None or isinstance(added, int), line, "entries_added must be a number")
    stream.entries_added = added
    for group in value.get("groups") or []:
        _require(isinstance(group, dict), line, "a consumer group must be an object")
        read = group.get("entries_read")
        _require(read is None or isinstance(read, int), line, "entries_read must be a number")
        stream.groups.append(
            StreamGroup(
                decode_bytes(group.get("name")), _stream_id(group.get("last_delivered_id"), line),
                read,
            )
        )  # fmt: skip
    return stream


def _value(kind: str, value: Any, line: int) -> Any:
    if kind == "string":
        return decode_bytes(value)
    if kind in ("list", "set"):
        return _texts(value, line)
    if kind == "hash":
        return _pairs(value, line)
    if kind == "zset":
        return _pairs(value, line, scores=True)
    return _stream(value, line)


def parse_record(document: Any, line: int) -> KeyRecord:
    _require(isinstance(document, dict), line, "expected a JSON object")
    db, kind = document.get("db"), document.get("type")
    _require(isinstance(db, int) and db >= 0, line, "db must be a number >= 0")
    _require(kind in TYPES, line, f"unknown type {kind!r}")
    expires = document.get("expires_at_ms")
    _require(expires is None or isinstance(expires, int), line, "expires_at_ms must be a number")
    part = document.get("part", 0)
    _require(isinstance(part, int) and part >= 0, line, "part must be a number >= 0")
    try:
        key = decode_bytes(document.get("key"))
        value = _value(kind, document.get("value"), line)
    except JsonFormatError as error:
        message = str(error)
        located = message if message.startswith("line") else f"line {line}: {message}"
        raise JsonFormatError(located) from None
    return KeyRecord(db, key, kind, value, expires, part, bool(document.get("more")))


BLOCK_BYTES = 1 << 20


def _documents_of(block: bytes) -> list[Any] | None:
    """Every line of `block` (complete lines) parsed in one call, or None when that fails
    or is ambiguous: the caller then parses line by line to name the bad line."""
    try:
        documents = json.loads(b"[" + block[:-1].replace(b"\n", b",") + b"]")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    return documents if len(documents) == block.count(b"\n") else None


def _parsed(lines: list[bytes]) -> list[Any] | None:
    try:
        return list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None


def _one_document(raw: bytes, number: int) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise JsonFormatError(f"line {number}: not valid JSON ({error})") from None
    except RecursionError:
        # No line of the format nests deeper than 4; Python's parser gives up at ~1000.
        raise JsonFormatError(f"line {number}: not valid JSON (nested too deeply)") from None


def _blocks(source: Any) -> Iterator[bytes]:
    """Complete lines in blocks of about BLOCK_BYTES; a last line without newline gets one."""
    rest = b""
    while True:
        data = source.read(BLOCK_BYTES)
        if not data:
            break
        data = rest + data
        end = data.rfind(b"\n") + 1
        rest = data[end:]
        if end:
            yield data[:end]
    if rest:
        yield rest + b"\n"


class JsonExportReader:
    """Iterate over the key records of an export; `header`, `trailer` and `counts` after.

    `documents()` is the fast way in: the parsed JSON objects of the key lines with their
    line numbers; whoever takes them calls `follow` for each, and the structure (parts in
    order, nothing after the end record, the end record's count) is checked here."""

    def __init__(self, source: Any, *, now_ms: int | None = None):
        self._source = source  # a binary file, or an iterable of lines
        self._now_ms = now_ms
        self.header: dict[str, Any] = {}
        self.trailer: dict[str, Any] | None = None
        self.counts = ReadCounts()
        self._previous: tuple[int, bytes, int, bool] | None = None  # db, key, part, more
        self.lines = 0  # read so far

    def _raw_blocks(self) -> Iterator[bytes]:
        if hasattr(self._source, "read"):
            yield from _blocks(self._source)
        else:
            for line in self._source:
                yield line if line.endswith(b"\n") else line + b"\n"

    def documents(self) -> Iterator[tuple[int, Any]]:
        for number, _lines, documents in self.document_blocks(fast=False):
            yield from enumerate(documents, number + 1)

    def numbered_blocks(self) -> Iterator[tuple[int, bytes]]:
        """The export in blocks of whole lines, each with the number of the line before it
        (`lines` counts them); `finish` once every block has been read."""
        for block in self._raw_blocks():
            yield self.lines, block
            self.lines += block.count(b"\n")

    def document_blocks(self, *, fast: bool = True) -> Iterator[tuple[int, list[bytes], list]]:
        """The key lines a block at a time: (number of the line before the block, the raw
        lines, their parsed documents). `fast` parses with orjson where it can (a line it
        refuses, the block goes to the standard parser, which names the line); its
        documents can differ from the standard parser's only in that a number beyond 64
        bits is a float, which a check for an integer refuses."""
        for number, block in self.numbered_blocks():
            yield from self.block_documents(number, block, fast=fast)
        self.finish()

    def block_documents(
        self, number: int, block: bytes, *, fast: bool = True
    ) -> Iterator[tuple[int, list[bytes], list]]:
        """`document_blocks` for one block, the line before it numbered `number`."""
        lines = block.split(b"\n")
        del lines[-1]
        documents = _parsed(lines) if fast else _documents_of(block)
        if documents is None:
            documents = [_one_document(raw, number + i) for i, raw in enumerate(lines, 1)]
        _require(self.trailer is None, number + 1, "data after the end record")
        if number == 0:
            header = documents[0]
            _require(isinstance(header, dict) and header.get("format") == FORMAT, 1,
                     f"not a {FORMAT} export (header missing)")  # fmt: skip
            self.header = header
            number, lines, documents = 1, lines[1:], documents[1:]
        if b'"end"' in block or b"\\u" in block:  # \u0065nd is "end" too
            yield from self._up_to_trailer(number, lines, documents)
        else:
            yield number, lines, documents

    def finish(self) -> None:
        """The checks once every line is read: complete, and counted right."""
        number = self.lines
        _require(number > 0, 1, "the export is empty")
        _require(self.trailer is not None, number, "the end record is missing (truncated export)")
        previous = self._previous
        _require(previous is None or not previous[3], number, "the last key is incomplete")
        assert self.trailer is not None
        _require(self.trailer.get("keys") == self.counts.total, number,
                 f"the end record counts {self.trailer.get('keys')} keys, the lines hold "
                 f"{self.counts.total}")  # fmt: skip

    def take_over(self, other: "JsonExportReader") -> None:
        """Continue after `other`, which read the next block on its own (starting on a
        new key, before any end record): its counts are added, its state becomes ours."""
        for db, kinds in other.counts.per_db_type.items():
            self.counts.per_db_type.setdefault(db, Counter()).update(kinds)
        self.counts.with_ttl += other.counts.with_ttl
        self.counts.expired += other.counts.expired
        self.trailer = other.trailer
        self._previous = other._previous

    def _up_to_trailer(
        self, number: int, lines: list[bytes], documents: list
    ) -> Iterator[tuple[int, list[bytes], list]]:
        for i, document in enumerate(documents):
            if isinstance(document, dict) and document.get("end") is True:
                yield number, lines[:i], documents[:i]
                _require(i == len(documents) - 1, number + i + 2, "data after the end record")
                self.trailer = document
                return
        yield number, lines, documents

    @property
    def continuing(self) -> bool:
        """The last key line said more lines of its key follow."""
        return self._previous is not None and self._previous[3]

    def counted(self, kinds: Mapping[tuple[int, str], int], with_ttl: int, expired: int) -> None:
        """Count keys checked elsewhere: whole keys in one line each, how many of each
        (db, type), that came after the last line given to `follow`."""
        if not any(kinds.values()):
            return
        self._previous = None  # the line after a whole key starts a new key
        for (db, kind), n in kinds.items():
            self.counts.per_db_type.setdefault(db, Counter())[kind] += n
        self.counts.with_ttl += with_ttl
        self.counts.expired += expired

    def follow(
        self, number: int, db: int, key: bytes, kind: str, expires: int | None, part: int,
        more: bool,
    ) -> None:  # fmt: skip
        """Check that this key line continues the previous one as it must; count keys."""
        previous = self._previous
        expected_part = previous[2] + 1 if previous is not None and previous[3] else 0
        if part != expected_part:
            found = f"expected part {expected_part} of a key, found part {part}"
            raise JsonFormatError(f"line {number}: {found}")
        if expected_part:
            _require((db, key) == previous[:2], number,  # type: ignore[index]
                     "a continuation line belongs to another key")  # fmt: skip
        else:
            self.counts.add(db, kind, expires, self._now_ms)
        self._previous = (db, key, part, more)

    def __iter__(self) -> Iterator[KeyRecord]:
        for number, document in self.documents():
            record = parse_record(document, number)
            self.follow(number, record.db, record.key, record.type, record.expires_at_ms,
                        record.part, record.more)  # fmt: skip
            yield record
