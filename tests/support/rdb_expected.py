"""The key lines the RDB -> JSON walk must write for crafted keys (rdb_build models),
written straight from the spec (engines/redis/rdb_json_rules.md, "A key line" and "Splitting big
keys"): a third opinion beside the C walk and its Python twin, which could otherwise
agree on the same mistake."""

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from tests.support.rdb_build import MODULE_CHARSET, Stream, WrittenKey

PIECE_BYTES = 1 << 20
LINE_ITEMS = 1000


def text(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _items(kind: str, model: Any) -> list[tuple[Any, int]]:
    """(the item as JSON, its raw size) for a collection."""
    if kind in ("list", "set"):
        return [(text(x), len(x)) for x in model]
    if kind == "hash":
        return [([text(f), text(v)], len(f) + len(v)) for f, v in model]
    if kind == "zset":  # scores: text already (str), or the stored bytes of a type 3 score
        return [
            ([text(m), s if isinstance(s, str) else text(s)], len(m) + len(s)) for m, s in model
        ]
    return [([entry_id, [text(x) for x in fields]], sum(map(len, fields)))
            for entry_id, fields in model.entries]  # fmt: skip


def _lines_of_items(items: list[tuple[Any, int]]) -> Iterator[list[Any]]:
    line: list[Any] = []
    size = 0
    for item, item_size in items:
        if len(line) >= LINE_ITEMS or size >= PIECE_BYTES:
            yield line
            line, size = [], 0
        line.append(item)
        size += item_size
    yield line


def _stream_end(stream: Stream) -> dict[str, Any]:
    return {
        "last_id": stream.last_id,
        "entries_added": stream.entries_added,
        "max_deleted_id": stream.max_deleted_id,
        "groups": [
            {"name": text(name), "last_delivered_id": delivered, "entries_read": read}
            for name, delivered, read in stream.groups
        ],
    }


def _values(kind: str, model: Any) -> list[Any]:
    if kind == "string":
        pieces = [model[i : i + PIECE_BYTES] for i in range(0, len(model), PIECE_BYTES)]
        return [text(piece) for piece in pieces or [b""]]
    values = list(_lines_of_items(_items(kind, model)))
    if kind != "stream":
        return values
    out: list[Any] = [{"entries": entries} for entries in values]
    out[-1].update(_stream_end(model))
    return out


def key_lines(written: WrittenKey) -> bytes:
    kind = written.value.kind
    values = _values(kind, written.value.model)
    head: dict[str, Any] = {"db": written.db, "key": text(written.key), "type": kind}
    if written.expires_at_ms is not None:
        head["expires_at_ms"] = written.expires_at_ms
    out = []
    for part, value in enumerate(values):
        line = {**head, "value": value}
        if part:
            line["part"] = part
        if part < len(values) - 1:
            line["more"] = True
        out.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return b"".join(out)


def expected_json(keys: Iterable[WrittenKey]) -> bytes:
    """Every key that goes into the JSON (module keys do not), in the RDB's order."""
    return b"".join(key_lines(k) for k in keys if k.value.kind != "module")


def expected_modules(keys: Iterable[WrittenKey]) -> list[tuple[str, int]]:
    """(module name, keys) in first-seen order: the 6th element of the C walk's answer."""
    found: dict[str, int] = {}
    for k in keys:
        if k.value.kind == "module":
            number = _module_number(k.value.payload)
            name = "".join(MODULE_CHARSET[(number >> (10 + 6 * (8 - j))) & 63] for j in range(9))
            found[name] = found.get(name, 0) + 1
    return list(found.items())


def _module_number(payload: bytes) -> int:
    first = payload[0]
    if first >> 6 == 0:
        return first & 0x3F
    if first >> 6 == 1:
        return (first & 0x3F) << 8 | payload[1]
    width = 4 if first == 0x80 else 8
    return int.from_bytes(payload[1 : 1 + width], "big")
