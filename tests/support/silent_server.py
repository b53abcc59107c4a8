"""A loopback TCP server that accepts connections and never answers (a database stuck
or behind a firewall that swallows replies), counting the connections it got."""

import socket
import threading
from typing import Self

from tests.support.processes import LOOPBACK, Server


class SilentServer(Server):
    def __init__(self) -> None:
        super().__init__()
        self._socket = socket.create_server((LOOPBACK, 0))
        self.port = self._socket.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def start(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._held.append(connection)

    def close(self) -> None:
        self._closed.set()
        self._socket.close()
        with self._lock:
            for connection in self._held:
                connection.close()
        super().close()
