"""Decoders for the compact encodings Redis keeps a value in: LZF-compressed strings,
ziplists, listpacks, intsets and zipmaps, each a blob read whole from the RDB.

Every decoder checks what it reads (docs: engines/redis/rdb_json_rules.md, "Encodings to
decode") and raises `Damaged` naming the structure; the walk adds where the blob ended.
Integers come back as `int`, strings as `bytes`, in stored order.
"""

import struct
from collections.abc import Iterator

_I16, _I32, _I64 = struct.Struct("<h"), struct.Struct("<i"), struct.Struct("<q")
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")
LZF_MAX_RATIO = 128  # an original length beyond this many times the compressed one is damage
LZF_WINDOW = 8192  # the farthest back an LZF back-reference reaches


class Damaged(ValueError):
    """A blob that is not the structure it claims to be; `what` names the structure."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def lzf_pieces(data: bytes, size: int, piece: int) -> Iterator[bytes]:
    """The `size` bytes LZF-compressed in `data` (liblzf's format, as Redis writes it), in
    pieces of `piece` bytes (the last one shorter, none empty unless `size` is 0), holding
    only the piece being made and the window that back-references reach. Damage found
    late comes after the pieces before it."""
    if size > LZF_MAX_RATIO * len(data):
        raise Damaged("LZF data")
    out = bytearray()
    base = given = 0  # the output's offset of out[0]; the output handed on so far
    end, at = len(data), 0
    while at < end:
        control = data[at]
        at += 1
        if control < 32:  # a run of control + 1 literal bytes
            run = control + 1
            if at + run > end or base + len(out) + run > size:
                raise Damaged("LZF data")
            out += data[at : at + run]
            at += run
        else:
            length = control >> 5
            if length == 7:
                if at >= end:
                    raise Damaged("LZF data")
                length += data[at]
                at += 1
            if at >= end:
                raise Damaged("LZF data")
            distance = ((control & 0x1F) << 8) + data[at] + 1
            at += 1
            length += 2
            start = len(out) - distance  # below 0 only before the start of the output
            if start < 0 or base + len(out) + length > size:
                raise Damaged("LZF data")
            if distance >= length:
                out += out[start : start + length]
            else:  # the copy overlaps what it writes: the pattern repeats
                pattern = bytes(out[start:])
                out += (pattern * (length // distance + 1))[:length]
        while base + len(out) - given >= piece:
            yield bytes(out[given - base : given - base + piece])
            given += piece
            if given - base > LZF_WINDOW:
                del out[: given - base - LZF_WINDOW]
                base = given - LZF_WINDOW
    if base + len(out) != size:
        raise Damaged("LZF data")
    if given < size or size == 0:
        yield bytes(out[given - base :])


def lzf_decompress(data: bytes, size: int) -> bytes:
    """The `size` bytes LZF-compressed in `data`, whole."""
    return b"".join(lzf_pieces(data, size, max(size, 1)))


def _ziplist_entry(blob: bytes, at: int, end: int) -> tuple[bytes | int, int]:
    """The entry starting at `at` (its prevlen) and where the next one starts."""
    at += 5 if blob[at] == 0xFE else 1
    if at >= end:
        raise Damaged("ziplist")
    encoding = blob[at]
    kind = encoding >> 6
    if kind < 3:
        if kind == 0:
            size, at = encoding & 0x3F, at + 1
        elif kind == 1:
            if at + 2 > end:
                raise Damaged("ziplist")
            size, at = ((encoding & 0x3F) << 8) | blob[at + 1], at + 2
        elif encoding == 0x80:
            if at + 5 > end:
                raise Damaged("ziplist")
            size, at = int.from_bytes(blob[at + 1 : at + 5], "big"), at + 5
        else:
            raise Damaged("ziplist")
        if at + size > end:
            raise Damaged("ziplist")
        return blob[at : at + size], at + size
    width = _ZIPLIST_INT_WIDTHS.get(encoding)
    if width is None:
        if 0xF1 <= encoding <= 0xFD:
            return (encoding & 0x0F) - 1, at + 1
        raise Damaged("ziplist")
    at += 1
    if at + width > end:
        raise Damaged("ziplist")
    return int.from_bytes(blob[at : at + width], "little", signed=True), at + width


_ZIPLIST_INT_WIDTHS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def ziplist_items(blob: bytes) -> list[bytes | int]:
    end = len(blob)
    if end < 11:
        raise Damaged("ziplist")
    total, tail, count = _U32.unpack_from(blob, 0)[0], _U32.unpack_from(blob, 4)[0], blob[8]
    count |= blob[9] << 8
    if total != end or tail >= total:
        raise Damaged("ziplist")
    items: list[bytes | int] = []
    at = 10
    last = end - 1  # where the end byte must be; entries lie before it
    while True:
        if at > last:
            raise Damaged("ziplist")
        if blob[at] == 0xFF:
            if at != last:
                raise Damaged("ziplist")
            break
        item, at = _ziplist_entry(blob, at, last)
        items.append(item)
    if count != 0xFFFF and count != len(items):
        raise Damaged("ziplist")
    return items


def _backlen_size(size: int) -> int:
    """Bytes of the backlen after an entry of `size` bytes: Redis's lpEncodeBacklen, whose
    bounds are one below the powers of 128 (and not for the first)."""
    if size <= 127:
        return 1
    if size < 16383:
        return 2
    if size < 2097151:
        return 3
    return 4 if size < 268435455 else 5


def _listpack_entry(blob: bytes, at: int, end: int) -> tuple[bytes | int, int]:
    """The entry at `at` and where the next one starts (after its backlen); `end` is the
    position of the final 0xFF, which no entry may reach."""
    first = blob[at]
    item: bytes | int
    if first < 0x80:
        item, header, size = first, 1, 0
    elif first < 0xC0:
        header, size = 1, first & 0x3F
        item = b""
    elif first < 0xE0:
        if at + 2 > end:
            raise Damaged("listpack")
        value = ((first & 0x1F) << 8) | blob[at + 1]
        item, header, size = value - (1 << 13) if value >= 1 << 12 else value, 2, 0
    elif first < 0xF0:
        if at + 2 > end:
            raise Damaged("listpack")
        header, size = 2, ((first & 0x0F) << 8) | blob[at + 1]
        item = b""
    elif first == 0xF0:
        if at + 5 > end:
            raise Damaged("listpack")
        header, size = 5, _U32.unpack_from(blob, at + 1)[0]
        item = b""
    else:
        width = _LISTPACK_INT_WIDTHS.get(first)
        if width is None:
            raise Damaged("listpack")
        if at + 1 + width > end:
            raise Damaged("listpack")
        item = int.from_bytes(blob[at + 1 : at + 1 + width], "little", signed=True)
        header, size = 1 + width, 0
    if size:
        if at + header + size > end:
            raise Damaged("listpack")
        item = blob[at + header : at + header + size]
    following = at + header + size + _backlen_size(header + size)
    if following > end:
        raise Damaged("listpack")
    return item, following


_LISTPACK_INT_WIDTHS = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}


def listpack_items(blob: bytes) -> list[bytes | int]:
    end = len(blob)
    if end < 7:
        raise Damaged("listpack")
    total, count = _U32.unpack_from(blob, 0)[0], _U16.unpack_from(blob, 4)[0]
    if total != end:
        raise Damaged("listpack")
    items: list[bytes | int] = []
    at, last = 6, end - 1
    while True:
        first = blob[at]
        if first < 0x80:  # the commonest entries (a 7-bit integer, a string of at most 63
            # bytes: both with a 1-byte backlen) are read here
            if at + 2 > last:
                raise Damaged("listpack")
            items.append(first)
            at += 2
        elif first < 0xC0:
            size = first & 0x3F
            if at + size + 2 > last:
                raise Damaged("listpack")
            items.append(blob[at + 1 : at + 1 + size])
            at += size + 2
        elif first == 0xFF:
            if at != last:
                raise Damaged("listpack")
            break
        else:
            item, at = _listpack_entry(blob, at, last)
            items.append(item)
    if count != 0xFFFF and count != len(items):
        raise Damaged("listpack")
    return items


def intset_items(blob: bytes) -> list[int]:
    if len(blob) < 8:
        raise Damaged("intset")
    width, count = _U32.unpack_from(blob, 0)[0], _U32.unpack_from(blob, 4)[0]
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise Damaged("intset")
    form = {2: _I16, 4: _I32, 8: _I64}[width]
    return [value for (value,) in form.iter_unpack(blob[8:])]


def _zipmap_length(blob: bytes, at: int, end: int) -> tuple[int, int]:
    first = blob[at]
    if first < 254:
        return first, at + 1
    if first == 255 or at + 5 > end:
        raise Damaged("zipmap")
    return _U32.unpack_from(blob, at + 1)[0], at + 5


def zipmap_items(blob: bytes) -> list[bytes]:
    """Field, value, field, value, ... of a zipmap (Redis before 2.6)."""
    end = len(blob)
    if end < 2:
        raise Damaged("zipmap")
    last = end - 1
    items: list[bytes] = []
    at = 1  # past zmlen, a hint only
    while True:
        if blob[at] == 0xFF:
            if at != last:
                raise Damaged("zipmap")
            return items
        size, at = _zipmap_length(blob, at, last)
        if at + size > last:
            raise Damaged("zipmap")
        items.append(blob[at : at + size])
        at += size
        if at >= last:
            raise Damaged("zipmap")
        size, at = _zipmap_length(blob, at, last)
        if at >= last:
            raise Damaged("zipmap")
        free = blob[at]
        at += 1
        if at + size + free > last:
            raise Damaged("zipmap")
        items.append(blob[at : at + size])
        at += size + free


_NODE_KEY = struct.Struct(">QQ")
_ID_MASK = (1 << 64) - 1
STREAM_DELETED, STREAM_SAME_FIELDS = 1, 2


def stream_entries(node_key: bytes, items: list[bytes | int]) -> list[tuple[str, list]]:
    """The live entries of one stream node: (id text, [field, value, ...]). `node_key` is
    the node's 16-byte master id, `items` its listpack's elements."""
    master_ms, master_seq = _NODE_KEY.unpack(node_key)
    end = len(items)

    def integer(at: int) -> int:
        if at >= end or items[at].__class__ is not int:
            raise Damaged("stream")
        return items[at]  # type: ignore[return-value]

    count, deleted, width = integer(0), integer(1), integer(2)
    if count < 0 or deleted < 0 or width < 0 or integer(3 + width) != 0:
        raise Damaged("stream")
    master_fields = items[3 : 3 + width]
    entries: list[tuple[str, list]] = []
    walked, at = 0, 4 + width
    while at < end:
        flags, ms, seq = integer(at), integer(at + 1), integer(at + 2)
        at += 3
        if flags & STREAM_SAME_FIELDS:
            if at + width > end:
                raise Damaged("stream")
            fields: list = [None] * (2 * width)
            fields[::2], fields[1::2] = master_fields, items[at : at + width]
            at += width
            expected = width + 3
        else:
            pairs = integer(at)
            at += 1
            if pairs < 0 or at + 2 * pairs > end:
                raise Damaged("stream")
            fields = items[at : at + 2 * pairs]
            at += 2 * pairs
            expected = 2 * pairs + 4
        if integer(at) != expected:
            raise Damaged("stream")
        at += 1
        walked += 1
        if not flags & STREAM_DELETED:
            entry_id = f"{(master_ms + ms) & _ID_MASK}-{(master_seq + seq) & _ID_MASK}"
            entries.append((entry_id, fields))
    if walked != count + deleted:
        raise Damaged("stream")
    return entries
