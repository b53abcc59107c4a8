"""The lines of a JSON export compiled to Redis commands (RESP bytes), for the restore.

`compile_document` is the fast path: it takes the shapes the exporter writes for a whole
key on one line (string, list, set, hash, zset, a stream without consumer groups), with
plain text (no base64), and builds their commands with C-level helpers (map, join, bytes
formatting) instead of a record object per key. Anything else, or anything in doubt,
raises Slow (or the
TypeError, ValueError, KeyError... of a check it leaves to Python: SLOW_ERRORS), and the
caller hands the line to `compile_line`, which checks it as the
reader does (its errors name the line). The fast path accepts a subset of what the full
parser accepts and yields the same commands (a test holds the two side by side).
"""

import math
import re
from itertools import chain
from operator import itemgetter
from typing import Any

from engines.redis.json_reader import KeyRecord, StreamValue, parse_record
from engines.redis.resp import encode_command

BULK = b"$%d\r\n%b\r\n"
_SET = b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
_PEXPIREAT = b"*3\r\n$9\r\nPEXPIREAT\r\n$%d\r\n%b\r\n$%d\r\n%d\r\n"
_DEL = b"*2\r\n$3\r\nDEL\r\n$%d\r\n%b\r\n"
_NAMES = {
    "list": b"$5\r\nRPUSH\r\n",
    "set": b"$4\r\nSADD\r\n",
    "hash": b"$4\r\nHSET\r\n",
    "zset": b"$4\r\nZADD\r\n",
}
_STREAM_FIELDS = frozenset(("entries", "last_id", "entries_added", "max_deleted_id", "groups"))
_STREAM_ID = re.compile("[0-9]+-[0-9]+")  # an ASCII subset of what the reader accepts
_first, _second = itemgetter(0), itemgetter(1)


class Slow(Exception):
    """The fast path met something it does not check itself: the full parser judges."""


SLOW_ERRORS = (Slow, TypeError, ValueError, KeyError, AttributeError, IndexError)


def bulk_strings(args: list[bytes]) -> bytes:
    return b"".join(map(BULK.__mod__, zip(map(len, args), args, strict=True)))


def _command(name: bytes, key: bytes, args: list[bytes]) -> bytes:
    return b"*%d\r\n%b$%d\r\n%b\r\n%b" % (len(args) + 2, name, len(key), key, bulk_strings(args))


def _pairs(value: Any) -> None:
    if value.__class__ is not list or set(map(type, value)) != {list}:
        raise Slow
    if set(map(len, value)) != {2}:
        raise Slow


def _aggregate(kind: str, key: bytes, value: Any) -> bytes:
    """RPUSH / SADD / HSET / ZADD with every member; str.encode refuses anything but text."""
    if kind == "list" or kind == "set":
        if value.__class__ is not list or not value:
            raise Slow
        return _command(_NAMES[kind], key, list(map(str.encode, value)))
    _pairs(value)
    if kind == "hash":
        return _command(_NAMES[kind], key, list(map(str.encode, chain.from_iterable(value))))
    scores = list(map(_second, value))
    if set(map(type, scores)) != {str} or any(map(math.isnan, map(float, scores))):
        raise Slow
    members = list(map(str.encode, map(_first, value)))
    ordered = zip(map(str.encode, scores), members, strict=True)  # ZADD wants score, member
    return _command(_NAMES[kind], key, list(chain.from_iterable(ordered)))


def _stream_id(value: Any) -> bytes:
    if value.__class__ is not str or not _STREAM_ID.fullmatch(value):
        raise Slow
    return value.encode()


def _stream(key: bytes, value: Any) -> list[bytes]:
    """XADD for each entry, then XSETID: a stream without consumer groups, in one line."""
    if value.__class__ is not dict or value.keys() != _STREAM_FIELDS or value["groups"] != []:
        raise Slow
    entries, added = value["entries"], value["entries_added"]
    if entries.__class__ is not list or not entries or added.__class__ is not int:
        raise Slow
    commands = []
    for entry in entries:
        if entry.__class__ is not list or len(entry) != 2 or entry[1].__class__ is not list:
            raise Slow
        fields = list(map(str.encode, entry[1]))
        if not fields or len(fields) % 2:
            raise Slow
        entry_id = _stream_id(entry[0])
        commands.append(_command(b"$4\r\nXADD\r\n", key, [entry_id, *fields]))
    last, deleted = _stream_id(value["last_id"]), _stream_id(value["max_deleted_id"])
    if last != b"0-0" and not (last == entry_id and added == len(entries) and deleted == b"0-0"):
        commands.append(_command(b"$6\r\nXSETID\r\n", key, [last, b"ENTRIESADDED", b"%d" % added,
                                                            b"MAXDELETEDID", deleted]))  # fmt: skip
    return commands


def compile_document(
    document: Any, delete_first: bool
) -> tuple[int, bytes, str, int | None, bytes, int]:
    """(db, key, type, expires_at_ms, commands, command count) of a one-line key; or Slow.

    `delete_first` puts DEL before an aggregate's commands (what --replace and --flush
    need so that writing a key twice, as SCAN may list it twice, gives it once)."""
    if document.__class__ is not dict:
        raise Slow
    size = len(document)
    db, kind, key, value = document["db"], document["type"], document["key"], document["value"]
    expires = document["expires_at_ms"] if size == 5 else None
    if (size != 4 and expires.__class__ is not int) or db.__class__ is not int or db < 0:
        raise Slow
    if key.__class__ is not str:
        raise Slow
    key = key.encode()
    if kind == "string":
        if value.__class__ is not str:
            raise Slow
        value = value.encode()
        command = _SET % (len(key), key, len(value), value)
        if expires is None:  # the commonest line of all: no list, no join
            return db, key, kind, None, command, 1
        commands, count = [command], 1
    elif kind == "stream":
        commands = _stream(key, value)
        count = len(commands)
    elif kind in _NAMES:
        commands, count = [_aggregate(kind, key, value)], 1
    else:
        raise Slow
    if delete_first and kind != "string":
        commands.insert(0, _DEL % (len(key), key))
        count += 1
    if expires is not None:
        commands.append(_PEXPIREAT % (len(key), key, len(b"%d" % expires), expires))
        count += 1
    return db, key, kind, expires, b"".join(commands), count


def _value_commands(record: KeyRecord) -> list[bytes]:
    key, value = record.key, record.value
    kind = record.type
    if kind == "string":
        return [encode_command("SET" if record.part == 0 else "APPEND", key, value)]
    if not value and kind != "stream":
        return []
    if kind == "list":
        return [encode_command("RPUSH", key, *value)]
    if kind == "set":
        return [encode_command("SADD", key, *value)]
    if kind == "hash":
        return [encode_command("HSET", key, *(x for pair in value for x in pair))]
    if kind == "zset":
        return [
            encode_command("ZADD", key, *(x for member, score in value for x in (score, member)))
        ]
    return _stream_commands(key, value, record)


def _stream_commands(key: bytes, stream: StreamValue, record: KeyRecord) -> list[bytes]:
    commands = [
        encode_command("XADD", key, entry_id, *fields) for entry_id, fields in stream.entries
    ]
    if record.more:
        return commands
    if record.part == 0 and not stream.entries:
        # An empty stream: created by adding its last id and trimming it away again.
        last = stream.last_id or b"0-0"
        if last == b"0-0":
            commands.append(
                encode_command("XGROUP", "CREATE", key, "jarvis-empty", "$", "MKSTREAM")
            )
            commands.append(encode_command("XGROUP", "DESTROY", key, "jarvis-empty"))
        else:
            commands.append(encode_command("XADD", key, "MAXLEN", "0", last, "_", "_"))
    if stream.last_id is not None and stream.last_id != b"0-0" and not _as_added(stream, record):
        extra: list[bytes | str | int] = []
        if stream.entries_added is not None:
            extra += ["ENTRIESADDED", stream.entries_added]
            extra += ["MAXDELETEDID", stream.max_deleted_id or b"0-0"]
        commands.append(encode_command("XSETID", key, stream.last_id, *extra))
    for group in stream.groups:
        read = ["ENTRIESREAD", group.entries_read] if group.entries_read is not None else []
        commands.append(
            encode_command("XGROUP", "CREATE", key, group.name, group.last_delivered_id, *read)
        )
    return commands


def _as_added(stream: StreamValue, record: KeyRecord) -> bool:
    """Whether adding the entries leaves the stream as recorded (XSETID would change
    nothing): the whole stream in this line, never trimmed, its last entry the last id."""
    return (
        record.part == 0
        and stream.entries != []
        and stream.last_id == stream.entries[-1][0]
        and stream.entries_added == len(stream.entries)
        and (stream.max_deleted_id or b"0-0") == b"0-0"
    )


def compile_line(document: Any, number: int):
    """(db, key, type, expires_at_ms, part, more, commands) for one key line, checked as
    parse_record checks it (its errors name the line)."""
    record = parse_record(document, number)  # raises the precise error, if any
    return (record.db, record.key, record.type, record.expires_at_ms, record.part,
            record.more, _value_commands(record))  # fmt: skip
