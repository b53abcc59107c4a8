"""The JSON export: every database, SCAN-based, type-aware, binary-safe, absolute expiry.

Keys come from SCAN in batches; each batch costs two pipelined round trips (TYPE, then
the first piece of every value with its PEXPIRETIME). The commands go over the bare RESP
connection (as the RDB sync does): redis-py's command packing and reply parsing cost
more than the rest of the export together. A key too big for one piece is
read on in pieces (GETRANGE, LRANGE ranges, HSCAN, SSCAN, ZSCAN, XRANGE) and written as
several lines, so memory stays flat whatever the dataset. SCAN may return a key twice
while the server resizes its table; the restore writes idempotently, so that is harmless.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engines.errors import JarvisError
from engines.redis import json_format
from engines.redis.connection import COMMAND_TIMEOUT_S, RedisTarget, connect, explain
from engines.redis.inspect import ServerFacts, parse_version, server_time_ms
from engines.redis.json_format import JsonCounts, encode_bytes
from engines.redis.resp import RespConnection, RespError, encode_command

SCAN_COUNT = 1000
PIECE_ITEMS = 1000
PIECE_BYTES = 1 << 20
BLOCK_BYTES = 1 << 20


@dataclass
class ExportCounts(JsonCounts):
    vanished: int = 0  # keys SCAN named that were gone when read


class _Session:
    """Commands over a bare RESP connection, replies as the server sends them (flat lists,
    bytes, numbers). The same calls as a redis-py client, for the few the export makes."""

    def __init__(self, connection: RespConnection):
        self.connection = connection

    def execute_command(self, name: str, *args: bytes | str | int) -> Any:
        return self.connection.call(*name.split(), *args)

    def pipeline(self, transaction: bool = False) -> "_Pipeline":
        return _Pipeline(self.connection)


class _Pipeline:
    def __init__(self, connection: RespConnection):
        self.connection = connection
        self.commands: list[bytes] = []

    def execute_command(self, name: str, *args: bytes | str | int) -> None:
        self.commands.append(encode_command(*name.split(), *args))

    def execute(self, raise_on_error: bool = False) -> list[Any]:
        """Every reply in order; an error reply is a RespError in its place."""
        self.connection.send(b"".join(self.commands))
        return self.connection.read_replies(len(self.commands))


def _session(target: RedisTarget, db: int) -> _Session:
    try:
        connection = RespConnection.open(target, COMMAND_TIMEOUT_S)
    except (OSError, RespError) as error:
        raise explain(error, target, db) from None
    try:
        connection.call("SELECT", db)
    except (OSError, RespError) as error:
        connection.close()
        raise explain(error, target, db) from None
    return _Session(connection)


def _pairs(flat: list) -> list[list]:
    return [[encode_bytes(flat[i]), encode_bytes(flat[i + 1])] for i in range(0, len(flat), 2)]


def _zpairs(flat: list) -> list[list]:
    return [[encode_bytes(flat[i]), flat[i + 1].decode()] for i in range(0, len(flat), 2)]


def _entries(raw: list) -> list[list]:
    return [[entry_id.decode(), [encode_bytes(x) for x in fields]] for entry_id, fields in raw]


def _as_dict(reply: list | dict) -> dict[str, Any]:
    if isinstance(reply, dict):  # a client version that still reshapes XINFO
        return {_text(name): value for name, value in reply.items()}
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class JsonExporter:
    """Yields the export line by line; `counts` is complete once the iteration ends."""

    def __init__(
        self,
        target: RedisTarget,
        facts: ServerFacts,
        *,
        check_cancelled: Callable[[], None] = lambda: None,
        on_keys: Callable[[int], None] | None = None,
    ):
        self.target = target
        self.facts = facts
        self.counts = ExportCounts()
        self._check_cancelled = check_cancelled
        self._on_keys = on_keys
        self._absolute_expiry = parse_version(facts.version) >= (7, 0)

    def blocks(self) -> Iterator[bytes]:
        """The lines joined into blocks of about 1 MiB: the artifact writer's cost is per
        block, so handing it single lines would dominate the export."""
        pending: list[bytes] = []
        size = 0
        for line in self.lines():
            pending.append(line)
            size += len(line)
            if size >= BLOCK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)

    def lines(self) -> Iterator[bytes]:
        first = connect(self.target, self.target.db)
        try:
            now = server_time_ms(first)
        finally:
            first.close()
        created = datetime.now(UTC).isoformat()
        yield json_format.dumps(json_format.header(self.facts.version, now, created))
        for db in sorted(self.facts.keyspace):
            session = _session(self.target, db)
            try:
                yield from self._database(session, db)
            except RespError as error:
                detail = str(error).strip() or "an error reply"
                raise JarvisError(f"Redis refused an operation: {detail}") from None
            except OSError as error:
                raise explain(error, self.target, db) from error
            finally:
                session.connection.close()
        yield json_format.dumps(json_format.trailer(self.counts.to_metadata()))

    def _database(self, client: _Session, db: int) -> Iterator[bytes]:
        cursor = b"0"
        while True:
            cursor, keys = client.execute_command("SCAN", cursor, "COUNT", SCAN_COUNT)
            if keys:
                yield from self._batch(client, db, keys)
                if self._on_keys is not None:
                    self._on_keys(self.counts.total)
            if cursor in (b"0", 0):
                return
            self._check_cancelled()

    def _batch(self, client: _Session, db: int, keys: list[bytes]) -> Iterator[bytes]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("TYPE", key)
        types = [_text(t) if not isinstance(t, Exception) else None for t in pipe.execute(False)]
        pipe = client.pipeline(transaction=False)
        if not self._absolute_expiry:
            pipe.execute_command("TIME")
        chosen = []
        for key, kind in zip(keys, types, strict=True):
            if kind not in json_format.TYPES:
                continue  # gone meanwhile ("none"), or a module type JSON cannot carry
            chosen.append((key, kind))
            _first_piece(pipe, key, kind)
            pipe.execute_command("PEXPIRETIME" if self._absolute_expiry else "PTTL", key)
        replies = iter(pipe.execute(False))
        base_ms = 0
        if not self._absolute_expiry:
            seconds, micros = next(replies)
            base_ms = int(seconds) * 1000 + int(micros) // 1000
        for key, kind in chosen:
            pieces = [next(replies) for _ in range(_FIRST_PIECE_REPLIES[kind])]
            expiry = next(replies)
            if isinstance(expiry, Exception) or any(isinstance(p, Exception) for p in pieces):
                # Changed type under us: read it again on its own.
                yield from self._single(client, db, key)
                continue
            if expiry == -2:
                self.counts.vanished += 1
                continue
            expires_at = None if expiry < 0 else (expiry if not base_ms else base_ms + expiry)
            yield from self._records(client, db, key, kind, pieces, expires_at)

    def _single(self, client: _Session, db: int, key: bytes) -> Iterator[bytes]:
        kind = _text(client.execute_command("TYPE", key))
        if kind not in json_format.TYPES:
            self.counts.vanished += 1
            return
        pipe = client.pipeline(transaction=False)
        _first_piece(pipe, key, kind)
        pipe.execute_command("PTTL", key)
        pipe.execute_command("TIME")
        *pieces, ttl, (seconds, micros) = pipe.execute(False)
        if any(isinstance(p, Exception) for p in pieces) or isinstance(ttl, Exception) or ttl == -2:
            self.counts.vanished += 1
            return
        expires_at = None if ttl < 0 else int(seconds) * 1000 + int(micros) // 1000 + ttl
        yield from self._records(client, db, key, kind, pieces, expires_at)

    def _records(
        self,
        client: _Session,
        db: int,
        key: bytes,
        kind: str,
        pieces: list,
        expires_at: int | None,
    ) -> Iterator[bytes]:
        record: dict[str, Any] = {"db": db, "key": encode_bytes(key), "type": kind}
        if expires_at is not None:
            record["expires_at_ms"] = expires_at
        reader = _PieceReader(client, key, kind, pieces)
        value, more = reader.first()
        if value is None:
            self.counts.vanished += 1
            return
        self.counts.add(db, kind, expires_at is not None)
        part = 0
        while True:
            if kind == "stream" and not more:
                value = {**value, **reader.stream_metadata()}
            line = {**record, "value": value}
            if part:
                line["part"] = part
            if more:
                line["more"] = True
            yield json_format.dumps(line)
            if not more:
                return
            part += 1
            value, more = reader.next()


# How many replies the first piece of each type takes in the batch pipeline.
_FIRST_PIECE_REPLIES = {"string": 1, "list": 1, "set": 1, "zset": 1, "hash": 1, "stream": 3}


def _first_piece(pipe: Any, key: bytes, kind: str) -> None:
    if kind == "string":
        pipe.execute_command("GETRANGE", key, 0, PIECE_BYTES - 1)
    elif kind == "list":
        pipe.execute_command("LRANGE", key, 0, PIECE_ITEMS - 1)
    elif kind in ("set", "zset", "hash"):
        pipe.execute_command(f"{kind[0].upper()}SCAN", key, 0, "COUNT", PIECE_ITEMS)
    else:
        pipe.execute_command("XRANGE", key, "-", "+", "COUNT", PIECE_ITEMS)
        pipe.execute_command("XINFO STREAM", key)
        pipe.execute_command("XINFO GROUPS", key)


class _PieceReader:
    """The pieces of one key after the first: (value, more) each time."""

    def __init__(self, client: _Session, key: bytes, kind: str, first: list):
        self.client = client
        self.key = key
        self.kind = kind
        self._first = first
        self._offset = 0
        self._cursor: bytes = b"0"
        self._last_id: bytes | None = None

    def first(self) -> tuple[Any, bool]:
        reply = self._first[0]
        if self.kind == "stream":
            self._info = _as_dict(self._first[1])
            self._groups = self._first[2]
        return self._take(reply, first=True)

    def next(self) -> tuple[Any, bool]:
        execute = self.client.execute_command
        if self.kind == "string":
            reply = execute("GETRANGE", self.key, self._offset, self._offset + PIECE_BYTES - 1)
        elif self.kind == "list":
            reply = execute("LRANGE", self.key, self._offset, self._offset + PIECE_ITEMS - 1)
        elif self.kind == "stream":
            start = b"(" + (self._last_id or b"0-0")
            reply = execute("XRANGE", self.key, start, "+", "COUNT", PIECE_ITEMS)
        else:
            command = f"{self.kind[0].upper()}SCAN"
            reply = execute(command, self.key, self._cursor, "COUNT", PIECE_ITEMS)
        value, more = self._take(reply, first=False)
        return ([] if self.kind != "stream" else {"entries": []}) if value is None else value, more

    def _take(self, reply: Any, *, first: bool) -> tuple[Any, bool]:
        kind = self.kind
        if kind == "string":
            self._offset += len(reply)
            # An empty first piece is an empty string, unless the key vanished (seen later).
            return encode_bytes(reply), len(reply) == PIECE_BYTES
        if kind == "list":
            self._offset += len(reply)
            if first and not reply:
                return None, False
            return [encode_bytes(x) for x in reply], len(reply) == PIECE_ITEMS
        if kind == "stream":
            if reply:
                self._last_id = reply[-1][0]
            return {"entries": _entries(reply)}, len(reply) == PIECE_ITEMS
        self._cursor, items = reply
        more = self._cursor not in (b"0", 0)
        if first and not items and not more:
            return None, False
        if kind == "set":
            return [encode_bytes(x) for x in items], more
        return (_zpairs(items) if kind == "zset" else _pairs(items)), more

    def stream_metadata(self) -> dict[str, Any]:
        info = self._info
        groups = []
        for raw in self._groups:
            group = _as_dict(raw)
            groups.append(
                {
                    "name": encode_bytes(group["name"]),
                    "last_delivered_id": _text(group["last-delivered-id"]),
                    "entries_read": group.get("entries-read"),
                }
            )
        return {
            "last_id": _text(info.get("last-generated-id")),
            "entries_added": info.get("entries-added"),
            "max_deleted_id": _text(info.get("max-deleted-entry-id")),
            "groups": groups,
        }
