"""Starting the API: the checks before it binds, the socket, uvicorn.

The server refuses to start without JARVIS_API_TOKEN (at least 32 characters) unless
`--insecure-no-auth` on a loopback address. The socket is bound here rather than by
uvicorn so that a taken port or a bad address is one line and an exit code, and so
that `--port 0` can say which port it got.
"""

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from engines.config import Settings
from engines.errors import SettingsError, UsageError
from engines.plumbing.hosts import is_loopback
from engines.plumbing.os_errors import explain_os_error
from engines.plumbing.redaction import secret_filter
from engines.workspace import Workspace
from jarvis_tui.api.app import OPENAPI_URL, build_app
from jarvis_tui.api.auth import BearerAuth
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.request_deadline import DeadlineHTTPProtocol

logger = logging.getLogger("jarvis.api")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
MIN_TOKEN_LENGTH = 32
TOKEN_HINT = "generate one with `openssl rand -hex 32`"


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    insecure_no_auth: bool = False


def api_token(settings: Settings, options: ServeOptions) -> str | None:
    """The token requests must carry; None only for --insecure-no-auth on loopback."""
    if options.insecure_no_auth:
        if not is_loopback(options.host):
            raise UsageError(
                f"--insecure-no-auth serves only a loopback address, not {options.host!r}: "
                "set JARVIS_API_TOKEN to serve other addresses"
            )
        logger.warning("API: serving without authentication on %s", options.host)
        return None
    token = settings.jarvis_api_token
    if token is None:
        raise SettingsError(
            [
                f"JARVIS_API_TOKEN is not set: the API needs a bearer token of at least "
                f"{MIN_TOKEN_LENGTH} characters ({TOKEN_HINT}), or --insecure-no-auth on a "
                "loopback address"
            ]
        )
    value = token.reveal()
    if len(value) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in value):
        raise SettingsError(
            [
                f"JARVIS_API_TOKEN must be at least {MIN_TOKEN_LENGTH} printable characters "
                f"without spaces ({TOKEN_HINT})"
            ]
        )
    return value


def bind(options: ServeOptions) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            options.host, options.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise UsageError(
            f"--host {options.host!r} is not an address this machine can listen on "
            f"({error.strerror}); use an IP address such as 127.0.0.1"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise explain_os_error(error, f"{options.host}:{options.port}") from None
    sock.set_inheritable(True)
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handling: it re-raises SIGTERM once stopped, so the
    process would end killed by it instead of exiting 0; `ApiServer.run` handles them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class ApiServer:
    """A bound, not yet running server; `run` in the foreground or `start` in a thread."""

    server: uvicorn.Server
    sock: socket.socket
    context: ApiContext

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def announce(self) -> str:
        return f"jarvis-tui serve: listening on {self.url} (OpenAPI at {self.url}{OPENAPI_URL})"

    def run(self) -> None:
        """In the foreground: SIGTERM or SIGINT stops it (requests in flight may finish)."""
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, lambda *_: self.stop()) for sig in handled}
        try:
            self._serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._serve, name="jarvis-api", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.server.should_exit = True

    def close(self) -> None:
        self.sock.close()
        self.context.workspace.catalog.close()


# Loggers outside 'jarvis' that log what a request raised: uvicorn's own traceback of
# every 500 ("Exception in ASGI application", beside the API's masked one) and asyncio's
# task errors. Masked by the same filter as the 'jarvis' handlers.
OUTSIDE_LOGGERS = ("uvicorn.error", "asyncio")


def mask_outside_loggers() -> None:
    for name in OUTSIDE_LOGGERS:
        outside = logging.getLogger(name)
        if secret_filter not in outside.filters:
            outside.addFilter(secret_filter)


def prepare(settings: Settings, env_file: Path | None, options: ServeOptions) -> ApiServer:
    """Every check, then the socket and the application; nothing is served yet."""
    mask_outside_loggers()
    token = api_token(settings, options)
    sock = bind(options)
    workspace = Workspace.open(settings)
    workspace.catalog.mark_orphaned_jobs()
    context = ApiContext(settings=settings, env_file=env_file, workspace=workspace)
    app = build_app(context, BearerAuth(token))
    config = uvicorn.Config(
        app,
        http=DeadlineHTTPProtocol,  # a request must arrive whole in time (Slowloris)
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return ApiServer(_Uvicorn(config), sock, context)
