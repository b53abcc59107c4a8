"""A loopback "Redis server" that speaks just enough RESP for `backup redis` (AUTH, PING,
INFO, CONFIG GET, TIME, CLIENT, REPLCONF) and answers SYNC/PSYNC with whatever a test
hands it: a crafted RDB sent with its length (`$<n>`) or diskless (`$EOF:<mark>`), cut
short, with bytes after it, or never ending. For attacking the backup as a broken or
hostile server would; every connection is served in a thread of its own."""

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Self

from tests.support.processes import LOOPBACK, Server

VERSION = "7.0.15"
# What the server sends after the SYNC header: blocks of bytes; a test's generator may
# also sleep, or end early (the connection is then closed).
Transfer = Callable[[], Iterable[bytes]]


def sized(rdb: bytes, *, chunk: int = 1 << 16) -> Transfer:
    """The snapshot written to disk first: `$<length>` then the bytes."""

    def transfer() -> Iterable[bytes]:
        yield b"$%d\r\n" % len(rdb)
        for start in range(0, len(rdb), chunk):
            yield rdb[start : start + chunk]

    return transfer


def diskless(rdb: bytes, *, chunk: int = 1 << 16, mark: bytes | None = None) -> Transfer:
    """The snapshot streamed: `$EOF:<40 bytes>`, the bytes, then the same 40 bytes."""
    mark = mark or os.urandom(20).hex().encode()

    def transfer() -> Iterable[bytes]:
        yield b"$EOF:" + mark + b"\r\n"
        for start in range(0, len(rdb), chunk):
            yield rdb[start : start + chunk]
        yield mark

    return transfer


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


def _array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(_bulk(item) for item in items)


class FakeRedis(Server):
    def __init__(
        self,
        transfer: Transfer,
        *,
        keys: int = 0,
        password: str | None = None,
        refuse_sync: str | None = None,
        unix_path: str | None = None,
        answers: dict[bytes, bytes] | None = None,
    ) -> None:
        super().__init__()
        self.transfer = transfer
        self.keys = keys
        self.password = password
        self.refuse_sync = refuse_sync  # an error reply to SYNC, e.g. "ERR unknown command"
        self.answers = answers or {}  # raw replies by command name, instead of the usual
        self.commands: list[list[bytes]] = []  # every command received, in order
        self.syncs = 0
        self.unix_path = unix_path  # listen there instead of on a loopback port
        if unix_path is None:
            self._socket = socket.create_server((LOOPBACK, 0))
        else:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socket.bind(unix_path)
            self._socket.listen()
        self.host = LOOPBACK
        self.port = self._socket.getsockname()[1] if unix_path is None else 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def url(self, password: str | None = None) -> str:
        if self.unix_path is not None:
            return f"unix://{self.unix_path}?db=0"
        secret = password if password is not None else self.password
        credentials = f":{secret}@" if secret else ""
        return f"redis://{credentials}{self.host}:{self.port}/0"

    def start(self) -> Self:
        self._acceptor.start()
        return self

    def close(self) -> None:
        # Shut down first: it wakes the thread blocked in accept(), which must be gone
        # before the descriptor is closed and reused by the next server's socket.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        if self._acceptor.is_alive():
            self._acceptor.join()
        self._socket.close()
        with self._lock:
            for connection in self._open:
                connection.close()
        super().close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._open.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        authenticated = self.password is None
        try:
            while True:
                command = self._read_command(reader)
                if command is None:
                    return
                with self._lock:
                    self.commands.append(command)
                name = command[0].upper()
                if name == b"AUTH":
                    authenticated = command[-1].decode() == self.password
                    reply = b"+OK\r\n" if authenticated else b"-WRONGPASS invalid password\r\n"
                    connection.sendall(reply)
                elif not authenticated:
                    connection.sendall(b"-NOAUTH Authentication required.\r\n")
                elif name in (b"SYNC", b"PSYNC"):
                    self._sync(connection)
                    return
                else:
                    connection.sendall(self._reply(command))
        except OSError:
            return
        finally:
            connection.close()

    @staticmethod
    def _read_command(reader) -> list[bytes] | None:
        line = reader.readline()
        if not line:
            return None
        if not line.startswith(b"*"):
            return line.split()  # inline command
        args = []
        for _ in range(int(line[1:])):
            size = int(reader.readline()[1:])
            args.append(reader.read(size + 2)[:-2])
        return args

    def _reply(self, command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name in self.answers:
            return self.answers[name]
        if name == b"PING":
            return b"+PONG\r\n"
        if name == b"INFO":
            info = (
                f"# Server\r\nredis_version:{VERSION}\r\nredis_mode:standalone\r\n"
                f"# Memory\r\nused_memory:1000000\r\n# Replication\r\nrole:master\r\n"
                f"# Keyspace\r\ndb0:keys={self.keys},expires=0,avg_ttl=0\r\n"
            )
            return _bulk(info.encode())
        if name == b"CONFIG":
            return _array(b"databases", b"16")
        if name == b"TIME":
            return _array(b"1765000000", b"0")
        if name in (b"CLIENT", b"REPLCONF", b"SELECT"):
            return b"+OK\r\n"
        if name == b"SCAN":  # the keys are only in the snapshot: SCAN finds none
            return b"*2\r\n" + _bulk(b"0") + b"*0\r\n"
        return b"-ERR unknown command '%b'\r\n" % name

    def _sync(self, connection: socket.socket) -> None:
        self.syncs += 1
        if self.refuse_sync is not None:
            connection.sendall(b"-" + self.refuse_sync.encode() + b"\r\n")
            return
        for block in self.transfer():
            connection.sendall(block)
