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
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = arg
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


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

    def read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes: what is buffered, else one receive."""
        if not self._buffer:
            self._fill()
        data = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return data

    def take_buffered(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def skim_replies(self, count: int) -> bytes:
        """The raw bytes of the next `count` replies, unparsed: for the replies to write
        commands (status, integer, error, or a short bulk string such as an XADD id), whose
        lines never hold a line break. Counting lines instead of parsing each reply is what
        keeps a restore's pass 2 close to `redis-cli --pipe`. Nothing may follow them."""
        buffer = self._buffer
        while True:
            bulks = buffer.count(b"\r\n$") + buffer.startswith(b"$") - buffer.count(b"$-1\r\n")
            complete = buffer.count(b"\r\n") - bulks
            if complete >= count and buffer.endswith(b"\r\n"):
                if complete > count:
                    raise ConnectionError("the server sent more replies than commands")
                data = bytes(buffer)
                buffer.clear()
                return data
            self._fill()

    @staticmethod
    def parse_replies(data: bytes, count: int) -> list[Any]:
        """`count` replies parsed from `data` (as `read_reply` returns them)."""
        parser = RespConnection(None)  # type: ignore[arg-type]
        parser._buffer += data
        return [parser.read_reply() for _ in range(count)]

    def read_reply(self) -> Any:
        """One reply; an error reply is returned (not raised) as RespError."""
        line = self.read_line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.read_exact(size + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            return [self.read_reply() for _ in range(count)]
        raise ConnectionError(f"unexpected reply from the server: {line[:40]!r}")
