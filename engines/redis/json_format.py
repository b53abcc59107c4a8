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
