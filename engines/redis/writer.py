"""Pipelined writes to the target, key by key, with a tally an operator can read.

Each key brings its commands, pre-encoded. A batch is sent in one write and its replies
read back; a key whose reply is an error is counted as a conflict (BUSYKEY: it exists)
or a failure. Errors that will hit every key (out of memory, read-only replica, no
permission, a DUMP payload the target cannot read) stop the restore at once. Progress
goes to the job log as it happens, so a killed restore still says how far it got.
"""

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.redis.resp import RespConnection, RespError, encode_command

LOG_INTERVAL_S = 5.0
SAMPLE_SIZE = 10
_FATAL = ("OOM", "READONLY", "NOPERM", "MISCONF", "NOSCRIPT", "LOADING")
_PAYLOAD = "DUMP payload version or checksum are wrong"
_PING = encode_command("PING")
IN_FLIGHT = 3  # batches sent before the replies of the first are read


def key_label(key: bytes) -> str:
    text = key.decode("utf-8", "backslashreplace")
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class KeyWrite:
    key: bytes
    payload: bytes  # one or more encoded commands
    replies: int  # how many commands `payload` holds


@dataclass
class Tally:
    written: Counter = field(default_factory=Counter)  # db -> keys
    conflicts: Counter = field(default_factory=Counter)  # db -> keys that existed
    conflict_samples: list[str] = field(default_factory=list)
    expired: int = 0
    failed: int = 0
    failure_samples: list[str] = field(default_factory=list)

    @property
    def total_written(self) -> int:
        return sum(self.written.values())

    @property
    def total_conflicts(self) -> int:
        return sum(self.conflicts.values())

    def conflict(self, db: int, key: bytes) -> None:
        self.conflicts[db] += 1
        if len(self.conflict_samples) < SAMPLE_SIZE:
            self.conflict_samples.append(f"db {db}: {key_label(key)}")

    def summary(self, verb: str = "written") -> str:
        per_db = ", ".join(f"db {db}: {n}" for db, n in sorted(self.written.items()))
        return f"{self.total_written} keys {verb}" + (f" ({per_db})" if per_db else "")


class PipelinedWriter:
    def __init__(self, connection: RespConnection, context: JobContext, total: int | None):
        self.connection = connection
        self.context = context
        self.total = total
        self.tally = Tally()
        self._db: int | None = None
        # Where each database's keys go (a spare being loaded for an all-or-nothing --flush).
        self.database_map: dict[int, int] = {}
        self._pending: deque[tuple[int, int, int, Callable]] = deque()  # batches sent
        self._last_log = time.monotonic()

    def select(self, db: int) -> None:
        if db != self._db:
            self.drain()
            actual = self.database_map.get(db, db)
            reply = self.connection.call("SELECT", actual)
            if reply != b"OK":
                raise JarvisError(f"the target refused SELECT {actual}: {reply!r}")
            self._db = db

    def existing(self, keys: list[bytes]) -> list[bool]:
        """Which of `keys` exist in the selected database (one round trip)."""
        self.connection.send(b"".join(encode_command("EXISTS", key) for key in keys))
        replies = self.connection.read_replies(len(keys))
        for reply in replies:
            if isinstance(reply, RespError):
                raise JarvisError(f"the target refused EXISTS: {reply}")
        return [reply == 1 for reply in replies]

    def write_batch(
        self,
        db: int,
        commands: bytes,
        replies: int,
        keys: int,
        pieces: Callable[[], list[tuple[KeyWrite, bool]]],
    ) -> None:
        """Send a batch of pre-encoded commands holding `keys` keys as one write, followed
        by a PING that marks where its replies end. The replies of a batch are read once
        the next batch is on its way (call `drain` after the last), so the server always
        has work. They are only counted; when one is an error, `pieces` (each key piece
        with whether it counts as a key) says which key it belongs to."""
        self.select(db)
        self.connection.send(commands)
        self.connection.send(_PING)
        self._pending.append((db, replies, keys, pieces))
        if len(self._pending) > IN_FLIGHT:
            self._collect()

    def drain(self) -> None:
        """Read the replies of every batch sent and not yet counted."""
        while self._pending:
            self._collect()

    def _collect(self) -> None:
        db, replies, keys, pieces = self._pending.popleft()
        data = self.connection.read_until_pong()
        if b"\r\n-" not in data and not data.startswith(b"-"):
            if RespConnection.count_replies(data) != replies:
                raise ConnectionError("the server sent a different number of replies")
            self.tally.written[db] += keys
        else:
            parsed = iter(RespConnection.parse_replies(data, replies))
            self._tally(db, [(item, first, [next(parsed) for _ in range(item.replies)])
                             for item, first in pieces()])  # fmt: skip
        self._report()

    def write(self, db: int, items: list[KeyWrite], *, count_keys: bool = True) -> None:
        """Send every item's commands; tally per key. `count_keys` False for the later
        pieces of a key already counted."""
        if not items:
            return
        self.select(db)
        self.connection.send(b"".join(item.payload for item in items))
        parsed = iter(self.connection.read_replies(sum(item.replies for item in items)))
        self._tally(db, [(item, count_keys, [next(parsed) for _ in range(item.replies)])
                         for item in items])  # fmt: skip
        self._report()

    def _tally(self, db: int, results: list[tuple[KeyWrite, bool, list[Any]]]) -> None:
        """Count each key piece's outcome from its replies; stop on a fatal error."""
        fatal: str | None = None
        for item, count_key, replies in results:
            errors = [reply for reply in replies if isinstance(reply, RespError)]
            if not errors:
                if count_key:
                    self.tally.written[db] += 1
                continue
            message = str(errors[0])
            if message.startswith("BUSYKEY"):
                self.tally.conflict(db, item.key)
            elif message.startswith(_FATAL) or _PAYLOAD in message:
                fatal = fatal or message
            else:
                self.tally.failed += 1
                if len(self.tally.failure_samples) < SAMPLE_SIZE:
                    self.tally.failure_samples.append(f"db {db}: {key_label(item.key)}: {message}")
        if fatal is not None:
            self.context.log(f"stopped after {self.tally.summary()}", "error")
            raise JarvisError(f"the target refused a write: {fatal}")

    def _report(self) -> None:
        done = self.tally.total_written
        self.context.progress(done, self.total, unit="keys")
        now = time.monotonic()
        if now - self._last_log >= LOG_INTERVAL_S:
            self._last_log = now
            self.context.log(f"so far {self.tally.summary()}")
        self.context.raise_if_cancelled()
