"""The JSON export: one JSON document per line (jq reads it as it is).

    {"format": "jarvis-redis-json/1", "server_version": ..., "server_time_ms": ...}
    {"db": 0, "key": "user:1", "type": "hash", "value": [["name", "Zoë"]], "expires_at_ms": ...}
    ...
    {"end": true, "keys": N, "keys_per_db": {...}, "keys_per_type": {...}}

Keys, members, fields and values are JSON strings when they are UTF-8, otherwise
`{"base64": "..."}`. Expiry is absolute (Unix milliseconds), so a restore sets the TTL
that remains at that moment. A big key is split over several lines: every line but the
last carries `"more": true`, and continuation lines carry `"part": n`. Values by type:

    string  "text"                      list  ["a", "b"]        set  ["a", "b"]
    hash    [["field", "value"], ...]   zset  [["member", "1.5"], ...] (score as Redis prints it)
    stream  {"entries": [["1-0", ["field", "value", ...]], ...]} and, on the last line,
            "last_id", "entries_added", "max_deleted_id", "groups": [{"name",
            "last_delivered_id", "entries_read"}]
"""

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FORMAT = "jarvis-redis-json/1"
TYPES = ("string", "list", "set", "zset", "hash", "stream")


class JsonFormatError(ValueError):
    """A line of the export is not what this format promises."""


def encode_bytes(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def decode_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict) and isinstance(value.get("base64"), str) and len(value) == 1:
        try:
            return base64.b64decode(value["base64"], validate=True)
        except binascii.Error:
            raise JsonFormatError("invalid base64 text") from None
    raise JsonFormatError(f"expected a string or {{'base64': ...}}, got {type(value).__name__}")


def dumps(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def header(server_version: str, server_time_ms: int, created_at: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "server_version": server_version,
        "server_time_ms": server_time_ms,
        "created_at": created_at,
    }


def trailer(counts: dict[str, Any]) -> dict[str, Any]:
    return {"end": True, **counts}


@dataclass
class JsonCounts:
    """The keys an export holds, as its end record (`trailer`) counts them."""

    per_db_type: dict[int, Counter] = field(default_factory=dict)
    with_ttl: int = 0

    def add(self, db: int, kind: str, has_ttl: bool, keys: int = 1) -> None:
        self.per_db_type.setdefault(db, Counter())[kind] += keys
        self.with_ttl += has_ttl * keys

    @property
    def total(self) -> int:
        return sum(sum(types.values()) for types in self.per_db_type.values())

    def to_metadata(self) -> dict[str, Any]:
        per_type: Counter = Counter()
        for types in self.per_db_type.values():
            per_type.update(types)
        per_db_type = sorted(self.per_db_type.items())
        return {
            "keys": self.total,
            "keys_per_db": {str(db): sum(types.values()) for db, types in per_db_type},
            "keys_per_type": dict(sorted(per_type.items())),
            "keys_per_db_type": {str(db): dict(sorted(types.items())) for db, types in per_db_type},
            "keys_with_ttl": self.with_ttl,
        }


def per_db(counts: dict[str, Any]) -> str:
    """The keys per database of counts in metadata's shape, for a log line or a report."""
    keys_per_db = counts.get("keys_per_db") or {}
    return ", ".join(f"db {db}: {n}" for db, n in keys_per_db.items()) or "empty"
