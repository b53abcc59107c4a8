"""A bare RESP2 connection: for the replication stream (SYNC), which no client library
exposes, and for restores that send pre-encoded commands in large pipelined batches."""

import socket
from typing import Any

from engines.redis.connection import CONNECT_TIMEOUT_S, RedisTarget, tls_context

READ_SIZE = 1 << 20


class RespError(Exception):
    """An error reply (`-ERR ...`) from the server."""


def encode_command(*args: bytes | str | int) -> bytes:
    """One command as RESP bytes (`*N` then one bulk string per argument)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if type(arg) is not bytes:
            arg = arg.encode() if isinstance(arg, str) else b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def _parse(data: bytes, pos: int) -> tuple[Any, int]:
    """The reply starting at `pos` and where the next begins; _Incomplete if cut short."""
    end = data.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = data[pos]
    if kind == 36:  # $ bulk string
        size = int(data[pos + 1 : end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if stop + 2 > len(data):
            raise _Incomplete
        return data[end + 2 : stop], stop + 2
    if kind == 42:  # * array
        count = int(data[pos + 1 : end])
        if count < 0:
            return None, end + 2
        pos = end + 2
        items = []
        for _ in range(count):
            item, pos = _parse(data, pos)
            items.append(item)
        return items, pos
    if kind == 58:  # : integer
        return int(data[pos + 1 : end]), end + 2
    if kind == 43:  # + status
        return data[pos + 1 : end], end + 2
    if kind == 45:  # - error
        return RespError(data[pos + 1 : end].decode(errors="replace")), end + 2
    raise ConnectionError(f"unexpected reply from the server: {data[pos : pos + 40]!r}")


class RespConnection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buffer = bytearray()

    @classmethod
    def open(cls, target: RedisTarget, timeout: float) -> "RespConnection":
        """Connect and authenticate; OSError or RespError on failure (callers explain it)."""
        if target.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(target.path)
        else:
            sock = socket.create_connection((target.host, target.port), CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls:
                sock = tls_context().wrap_socket(sock, server_hostname=target.host)
        sock.settimeout(timeout)
        connection = cls(sock)
        try:
            if target.password is not None:
                credentials = [target.username] if target.username else []
                connection.call("AUTH", *credentials, target.password.reveal())
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RespConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def call(self, *args: bytes | str | int) -> Any:
        self.send(encode_command(*args))
        reply = self.read_reply()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def _fill(self) -> None:
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    def read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            self._fill()

    def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes: what is buffered, else one receive."""
        if not self._buffer:
            self._fill()
        data = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return data

    def read_until_pong(self) -> bytes:
        """The raw bytes of the replies before the next `+PONG` (the reply to a PING sent
        after a batch of write commands), unparsed; what follows stays buffered. Replies to
        write commands (status, integer, error, a short bulk string such as an XADD id)
        never hold a line break, so `+PONG` at the start of a line is that PING's."""
        buffer = self._buffer
        start = 0
        while True:
            found = buffer.find(b"+PONG\r\n", start)
            if found < 0:
                start = max(0, len(buffer) - 6)
                self._fill()
            elif found == 0 or buffer[found - 2 : found] == b"\r\n":
                data = bytes(buffer[:found])
                del buffer[: found + 7]
                return data
            else:
                start = found + 1

    @staticmethod
    def count_replies(data: bytes) -> int:
        """How many replies `data` holds: lines, less the second line of each bulk string
        (replies to write commands, as `read_until_pong` returns them)."""
        bulks = data.count(b"\r\n$") + data.startswith(b"$") - data.count(b"$-1\r\n")
        return data.count(b"\r\n") - bulks

    @staticmethod
    def parse_replies(data: bytes, count: int) -> list[Any]:
        """`count` replies parsed from `data` (as `read_reply` returns them)."""
        replies, pos = [], 0
        for _ in range(count):
            reply, pos = _parse(data, pos)
            replies.append(reply)
        return replies

    def read_reply(self) -> Any:
        """One reply; an error reply is returned (not raised) as RespError."""
        return self.read_replies(1)[0]

    def read_replies(self, count: int) -> list[Any]:
        """The next `count` replies, parsed from one buffer (errors as RespError)."""
        data = bytes(self._buffer)
        pos = 0
        replies: list[Any] = []
        while len(replies) < count:
            try:
                reply, pos = _parse(data, pos)
            except _Incomplete:
                received = self.sock.recv(READ_SIZE)
                if not received:
                    raise ConnectionError("the server closed the connection") from None
                data, pos = data[pos:] + received, 0
                continue
            replies.append(reply)
        self._buffer = bytearray(data[pos:])
        return replies
