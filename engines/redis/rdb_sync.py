"""An RDB snapshot taken over the replication protocol, as `redis-cli --rdb` does.

We connect as a replica that only wants the snapshot (`REPLCONF rdb-only 1`), send
SYNC, and stream what comes back: `$<length>` and that many bytes when the server
writes the snapshot to disk first, or `$EOF:<40-byte mark>` and bytes up to the mark
when it streams it (diskless). No file access to the server is needed. Managed
services often refuse SYNC; `SyncRefusedError` says so and why.
"""

from collections.abc import Callable, Iterator

from engines.errors import JarvisError
from engines.redis.connection import RedisTarget
from engines.redis.resp import RespConnection, RespError, encode_command

# The server sends a newline each second while it prepares the snapshot; silence for
# this long means it is gone (Redis's own repl-timeout is 60 s).
SILENCE_TIMEOUT_S = 90
# While the server prepares the snapshot (a fork and BGSAVE can take minutes, with only
# keep-alive newlines meanwhile) or stalls during it, a cancellation is noticed within
# this long.
CANCEL_POLL_S = 0.25
EOF_MARK_SIZE = 40
MAX_HEADER = 1024  # `$EOF:<40 bytes>` or `$<length>`: anything longer is not a header
BLOCK_SIZE = 1 << 20


class SyncRefusedError(JarvisError):
    """The server does not let us take a snapshot over replication."""


class RdbStream:
    """Iterate to receive the snapshot; `size` (when announced) and `received` for progress."""

    def __init__(
        self,
        target: RedisTarget,
        *,
        capa_eof: bool = True,
        check_cancelled: Callable[[], None] = lambda: None,
    ):
        self.target = target
        self.capa_eof = capa_eof
        self.check_cancelled = check_cancelled  # raises to give up while waiting
        self.size: int | None = None
        self.received = 0
        self.diskless = False
        self._connection: RespConnection | None = None

    def start(self) -> "RdbStream":
        """Connect and ask for the snapshot; raise SyncRefusedError when refused."""
        try:
            connection = RespConnection.open(self.target, SILENCE_TIMEOUT_S)
        except RespError as error:
            reason = self.target.scrub(str(error))
            raise SyncRefusedError(f"authentication for SYNC failed: {reason}") from None
        self._connection = connection
        try:
            if self.capa_eof:
                _optional(connection, "REPLCONF", "capa", "eof")
            _optional(connection, "REPLCONF", "rdb-only", "1")
            connection.send(b"SYNC\r\n")
            header = self._read_header(connection)
        except BaseException:
            self.close()
            raise
        if header.startswith(b"-"):
            self.close()
            raise SyncRefusedError(self.target.scrub(header[1:].decode(errors="replace").strip()))
        if header.startswith(b"$EOF:"):
            self.diskless = True
            self._mark = header[5:]
            if len(self._mark) != EOF_MARK_SIZE:
                self.close()
                raise JarvisError(f"unexpected SYNC answer from {self.target.address}")
        elif header.startswith(b"$") and header[1:].isdigit():
            self.size = int(header[1:])
        else:
            self.close()
            shown = self.target.scrub(repr(header[:40]))
            raise JarvisError(f"unexpected SYNC answer from {self.target.address}: {shown}")
        return self

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __iter__(self) -> Iterator[bytes]:
        if self._connection is None:
            self.start()
        try:
            if self.diskless:
                yield from self._until_mark()
            else:
                yield from self._sized()
        finally:
            self.close()

    def _sized(self) -> Iterator[bytes]:
        assert self._connection is not None and self.size is not None
        while self.received < self.size:
            block = self._receive(min(BLOCK_SIZE, self.size - self.received))
            self.received += len(block)
            yield block

    def _until_mark(self) -> Iterator[bytes]:
        # Hold back the last 40 bytes: they may turn out to be the end mark.
        held = b""
        while True:
            data = held + self._receive(BLOCK_SIZE)
            found = data.find(self._mark, max(0, len(held) - EOF_MARK_SIZE))
            if found >= 0:
                if found:
                    self.received += found
                    yield data[:found]
                return
            keep = min(len(data), EOF_MARK_SIZE)
            out, held = data[:-keep], data[-keep:]
            if out:
                self.received += len(out)
                yield out

    def _receive(self, limit: int) -> bytes:
        assert self._connection is not None
        try:
            return self._read_some(self._connection, limit, "during the snapshot transfer")
        except ConnectionError:
            raise JarvisError(
                f"{self.target.address} closed the connection after {self.received} bytes of "
                "the snapshot; check the server's log (out of memory during fork?)"
            ) from None

    def _read_some(self, connection: RespConnection, limit: int, during: str) -> bytes:
        """Up to `limit` bytes as they come; `check_cancelled` every CANCEL_POLL_S of
        silence, which ends the transfer after SILENCE_TIMEOUT_S."""
        silent_s = 0.0
        while True:
            try:
                return connection.read_some(limit)
            except TimeoutError:
                self.check_cancelled()
                silent_s += CANCEL_POLL_S
                if silent_s >= SILENCE_TIMEOUT_S:
                    raise JarvisError(
                        f"{self.target.address} sent nothing for {SILENCE_TIMEOUT_S} s {during}; "
                        "check the server's log (BGSAVE failing? disk full?)"
                    ) from None

    def _read_header(self, connection: RespConnection) -> bytes:
        """The first line after SYNC, skipping the keep-alive newlines sent meanwhile;
        `check_cancelled` is called on each of them and every CANCEL_POLL_S of silence
        (the socket's timeout from here on). Read a byte at a time (what follows the
        line stays buffered): it is short."""
        line = bytearray()
        connection.sock.settimeout(CANCEL_POLL_S)
        try:
            while not line.endswith(b"\r\n"):
                byte = self._read_some(connection, 1, "after SYNC")
                if byte == b"\n" and not line:  # keep-alive
                    self.check_cancelled()
                    continue
                line += byte
                if len(line) > MAX_HEADER:
                    shown = self.target.scrub(repr(bytes(line[:40])))
                    raise JarvisError(f"unexpected SYNC answer from {self.target.address}: {shown}")
        except ConnectionError:
            raise SyncRefusedError("the server closed the connection on SYNC") from None
        return bytes(line[:-2])


def _optional(connection: RespConnection, *command: str) -> None:
    """Send a hint older servers may not know; their error reply is fine."""
    connection.send(encode_command(*command))
    connection.read_reply()
