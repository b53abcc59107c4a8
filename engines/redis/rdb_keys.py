"""Each RDB value type read off the stream and written as JSON key lines (the walk's
emitting mode): the value decoded from whichever encoding Redis stored it in."""

import struct
from collections.abc import Callable

from engines.redis.json_format import encode_bytes
from engines.redis.rdb_json import PIECE_BYTES, KeyLines, item, score_text, string_lines
from engines.redis.rdb_reader import Reader
from engines.redis.rdb_values import (
    Damaged,
    intset_items,
    listpack_items,
    lzf_decompress,
    lzf_pieces,
    stream_entries,
    ziplist_items,
    zipmap_items,
)

_DOUBLE = struct.Struct("<d")
_SCORE_WORDS = {253: b"nan", 254: b"inf", 255: b"-inf"}  # type 3 scores stored without digits
_NO_ENTRIES_READ = (1 << 64) - 1  # Redis saves its "invalid" -1 as this length
QUICKLIST_PLAIN, QUICKLIST_PACKED = 1, 2


def write_value(reader: Reader, rdb_type: int, lines: KeyLines) -> None:
    """Read the value of type `rdb_type` (a type the walk knows, not a module) into `lines`."""
    if rdb_type == 0:
        _string(reader, lines)
        return
    if rdb_type in (15, 19, 21):
        _stream(reader, rdb_type, lines)
        return
    if rdb_type in (1, 2):
        for _ in range(reader.length()):
            lines.add(*item(reader.value_string()))
    elif rdb_type == 4:
        for _ in range(reader.length()):
            _pair(lines, reader.value_string(), reader.value_string())
    elif rdb_type in (3, 5):
        for _ in range(reader.length()):
            member = reader.value_string()
            _pair(lines, member, _score(reader, rdb_type))
    elif rdb_type in (10, 11, 20):
        decoder = {10: ziplist_items, 11: intset_items, 20: listpack_items}[rdb_type]
        for value in _blob(reader, decoder):
            lines.add(*item(value))
    elif rdb_type == 14:
        for _ in range(reader.length()):
            for value in _blob(reader, ziplist_items):
                lines.add(*item(value))
    elif rdb_type == 18:
        _quicklist(reader, lines)
    elif rdb_type == 9:
        _pairs(reader, lines, _blob(reader, zipmap_items), "zipmap")
    elif rdb_type in (12, 13, 16, 17):
        what, decoder = (
            ("ziplist", ziplist_items) if rdb_type < 16 else ("listpack", listpack_items)
        )
        _pairs(reader, lines, _blob(reader, decoder), what)
    elif rdb_type in (22, 24):
        if rdb_type == 24:
            reader.skip(8)  # the minimum field expiry
        for _ in range(reader.length()):
            reader.length()  # the field's expiry: the JSON format has no place for it
            _pair(lines, reader.value_string(), reader.value_string())
    else:  # 23, 25: a listpack of field, value, expiry
        if rdb_type == 25:
            reader.skip(8)
        values = _blob(reader, listpack_items)
        if len(values) % 3:
            raise reader.damaged("listpack")
        for at in range(0, len(values), 3):
            _pair(lines, values[at], values[at + 1])
    lines.finish()


def _blob(reader: Reader, decoder: Callable[[bytes], list]) -> list:
    return reader.decoded(decoder, reader.value_string())


def _pair(lines: KeyLines, first: bytes | int, second: bytes | int) -> None:
    name, name_size = item(first)
    value, value_size = item(second)
    lines.add([name, value], name_size + value_size)


def _pairs(reader: Reader, lines: KeyLines, values: list, what: str) -> None:
    if len(values) % 2:
        raise reader.damaged(what)
    for at in range(0, len(values), 2):
        _pair(lines, values[at], values[at + 1])


def _score(reader: Reader, rdb_type: int) -> bytes:
    if rdb_type == 5:
        return score_text(_DOUBLE.unpack(reader.exact(8))[0]).encode()
    size = reader.byte()
    return _SCORE_WORDS.get(size) or reader.exact(size)


def _string(reader: Reader, lines: KeyLines) -> None:
    """A string over PIECE_BYTES is read (plain) or decompressed (LZF) a piece at a time,
    never held whole."""
    encoding, size = reader.string_size()
    if encoding == -1 and size > PIECE_BYTES:
        while size > 0:
            piece = reader.exact(min(size, PIECE_BYTES))
            size -= len(piece)
            lines.piece(encode_bytes(piece), size > 0)
        return
    if encoding == 3:
        original = reader.length()
        compressed = reader.exact(size)
        if original > PIECE_BYTES:
            _lzf_string(reader, lines, compressed, original)
            return
        data = reader.decoded(lzf_decompress, compressed, original)
    else:
        data = reader.plain_or_integer(encoding, size)
    string_lines(lines, data)


def _lzf_string(reader: Reader, lines: KeyLines, compressed: bytes, original: int) -> None:
    given = 0
    try:
        for piece in lzf_pieces(compressed, original, PIECE_BYTES):
            given += len(piece)
            lines.piece(encode_bytes(piece), given < original)
    except Damaged as error:
        raise reader.damaged(error.what) from None


def _quicklist(reader: Reader, lines: KeyLines) -> None:
    for _ in range(reader.length()):
        container = reader.length()
        if container == QUICKLIST_PLAIN:
            lines.add(*item(reader.value_string()))
        elif container == QUICKLIST_PACKED:
            for value in _blob(reader, listpack_items):
                lines.add(*item(value))
        else:
            raise reader.damaged("quicklist")


def _stream_id(reader: Reader) -> str:
    return f"{reader.length()}-{reader.length()}"


def _stream(reader: Reader, rdb_type: int, lines: KeyLines) -> None:
    for _ in range(reader.length()):
        node_key = reader.value_string()
        if len(node_key) != 16:
            raise reader.damaged("stream")
        for entry_id, fields in reader.decoded(
            stream_entries, node_key, reader.decoded(listpack_items, reader.value_string())
        ):
            texts, size = [], 0
            for value in fields:
                text, value_size = item(value)
                texts.append(text)
                size += value_size
            lines.add([entry_id, texts], size)
    reader.length()  # the number of entries
    tail: dict = {"last_id": _stream_id(reader), "entries_added": None, "max_deleted_id": None}
    if rdb_type >= 19:
        _stream_id(reader)  # the first id
        tail["max_deleted_id"] = _stream_id(reader)
        tail["entries_added"] = reader.length()
    groups = []
    for _ in range(reader.length()):
        name = reader.value_string()
        group = {"name": encode_bytes(name), "last_delivered_id": _stream_id(reader)}
        entries_read = reader.length() if rdb_type >= 19 else _NO_ENTRIES_READ
        group["entries_read"] = None if entries_read == _NO_ENTRIES_READ else entries_read
        groups.append(group)
        skip_pending_and_consumers(reader, rdb_type)
    tail["groups"] = groups
    lines.finish(tail)


def skip_pending_and_consumers(reader: Reader, rdb_type: int) -> None:
    """A consumer group's pending entries and consumers, which no JSON line holds."""
    for _ in range(reader.length()):  # pending entries
        reader.skip(16 + 8)  # raw id, delivery time
        reader.length()  # delivery count
    for _ in range(reader.length()):  # consumers
        reader.skip_string()
        reader.skip(8)  # seen time
        if rdb_type >= 21:
            reader.skip(8)  # active time
        reader.skip(reader.length() * 16)  # their pending ids
