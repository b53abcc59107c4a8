"""What every throwaway test server shares: its own temporary folder and a stop at
interpreter exit. Ports, waits, the unprivileged account a server runs as under root
and the server processes themselves are the engine's (engines/servers), shared with
the demo platform.

Each server lives in its own temporary folder on a free loopback port and is
stopped on fixture teardown or, failing that, at interpreter exit.
"""

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Self

from engines.servers.process import (
    LOOPBACK,
    PORT_ATTEMPTS,
    Account,
    chown_tree,
    free_port,
    reachable_by,
    wait_until,
)

__all__ = ["LOOPBACK", "PORT_ATTEMPTS", "Server", "TrackedServer", "free_port", "wait_until"]

_live_servers: list[Any] = []


class Server:
    """Registered at creation so interpreter exit closes whatever a test left running."""

    def __init__(self) -> None:
        _live_servers.append(self)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            _live_servers.remove(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Self:
        raise NotImplementedError


class TrackedServer:
    """Mixin (the first base) for an engine server a test starts: registered like `Server`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _live_servers.append(self)

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            with contextlib.suppress(ValueError):
                _live_servers.remove(self)


@atexit.register
def _close_all() -> None:
    for server in reversed(_live_servers[:]):
        with contextlib.suppress(Exception):
            server.close()


def _temporary_root(account: Account | None) -> Path:
    root = Path(tempfile.gettempdir())
    # The server account must be able to walk down to its folder.
    return root if reachable_by(account, root) else Path("/tmp")


def _remove_abandoned_folders(root: Path) -> None:
    """Delete folders of earlier test runs that died without cleaning up."""
    for folder in root.glob("jarvis-test-*-*-*"):
        try:
            owner_pid = int(folder.name.split("-")[3])
        except (IndexError, ValueError):
            continue
        if owner_pid != os.getpid() and not Path(f"/proc/{owner_pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def make_server_folder(kind: str, account: Account | None) -> Path:
    root = _temporary_root(account)
    _remove_abandoned_folders(root)
    folder = Path(tempfile.mkdtemp(prefix=f"jarvis-test-{kind}-{os.getpid()}-", dir=root))
    chown_tree(folder, account)
    return folder


def interruptible() -> None:
    """preexec_fn for a child a test interrupts with SIGINT: its default action back, since a
    suite started in the background (a shell's `&`) passes SIGINT on ignored, and Python
    then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
