"""A loopback HTTP proxy in front of the test S3 server that misbehaves on request, as a
real S3 or the network between does now and then:

- `fail(n)`: answer the next `n` requests (of the given methods) with an S3 error,
  503 SlowDown unless told otherwise (500 InternalError, 403 AccessDenied...);
  `fail_fraction(f, seed=...)`: answer about that fraction of them so, each decision
  drawn from the seed, the request line and how often that line was seen before, so the
  same requests fail in every run whatever order the client's threads send them in
  (the server's random multipart upload id left out of the line);
- `drop_uploads(n)`: read half of the next `n` request bodies and close the connection;
- `drop_downloads(n)`: send half of the next `n` object bodies (200 or 206) and close;
- `stall(methods)`: hold those requests unanswered until `heal()` (or the proxy closes);
- `echo`: text every error body carries (a server that echoes what it was sent: the
  tests put the secret key there), and every error body echoes the request's
  Authorization header too.

`heal()` ends every fault; `served` counts the faults served by kind.
"""

import hashlib
import http.client
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.support.processes import LOOPBACK, Server

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
WRITES = ("PUT", "POST")
STALL_CAP_S = 120  # a stalled request is dropped after this even if nobody heals the proxy
_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "AccessDenied": "Access Denied",
}


class FaultyS3Proxy(Server):
    def __init__(self, upstream_url: str, *, echo: str = "") -> None:
        self._upstream = urlsplit(upstream_url)
        self.echo = echo
        self.served: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._healed = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.heal()
        super().__init__()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    # --- faults ------------------------------------------------------------------------

    def fail(self, count: float, status: int = 503, code: str = "SlowDown", methods=WRITES) -> Self:
        """The next `count` requests of `methods` get S3's error `code` (math.inf: all)."""
        with self._lock:
            self._errors_left, self._error = count, (status, code, tuple(methods))
            self._fraction = 0.0
        return self

    def fail_fraction(
        self, fraction: float, *, seed: int, status: int = 503, code: str = "SlowDown",
        methods=WRITES,
    ) -> Self:  # fmt: skip
        with self._lock:
            self._fraction, self._seed = fraction, seed
            self._error, self._errors_left = (status, code, tuple(methods)), 0
            self._seen: Counter[str] = Counter()
        return self

    def drop_uploads(self, count: int) -> Self:
        with self._lock:
            self._upload_drops_left = count
        return self

    def drop_downloads(self, count: int) -> Self:
        with self._lock:
            self._download_drops_left = count
        return self

    def stall(self, methods=("GET", "HEAD", "PUT", "POST", "DELETE")) -> Self:
        with self._lock:
            self._stalled = tuple(methods)
            self._healed.clear()
        return self

    def heal(self) -> Self:
        with self._lock:
            self._errors_left, self._fraction = 0, 0.0
            self._error = (503, "SlowDown", WRITES)
            self._seed, self._seen = 0, Counter()
            self._upload_drops_left = self._download_drops_left = 0
            self._stalled: tuple[str, ...] = ()
            self._healed.set()
        return self

    # --- the decisions, one per request ---------------------------------------------------

    def _decide(self, method: str, path: str) -> str | tuple[int, str] | None:
        with self._lock:
            self.requests[method] += 1
            if method in self._stalled:
                self.served["stall"] += 1
                return "stall"
            status, code, methods = self._error
            if method in methods and self._errors_left > 0:
                self._errors_left -= 1
                self.served[code] += 1
                return (status, code)
            if method in methods and self._fraction:
                line = f"{method} {_without_upload_id(path)}"
                self._seen[line] += 1
                draw = f"{self._seed}:{line}:{self._seen[line]}".encode()
                chance = random.Random(hashlib.sha256(draw).digest()).random()
                if chance < self._fraction:
                    self.served[code] += 1
                    return (status, code)
            if method == "PUT" and self._upload_drops_left > 0:
                self._upload_drops_left -= 1
                self.served["dropped upload"] += 1
                return "drop upload"
            return None

    def _cut_download(self, status: int, size: int) -> bool:
        with self._lock:
            cut = self._download_drops_left > 0 and status in (200, 206) and size > 1
            if cut:
                self._download_drops_left -= 1
                self.served["dropped download"] += 1
            return cut

    def _error_body(self, code: str, authorization: str) -> bytes:
        message = f"{_MESSAGES.get(code, code)} {self.echo}".strip()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Authorization>{authorization}</Authorization><RequestId>jarvis-faults</RequestId>"
            "</Error>"
        ).encode()

    # --- the server ----------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        upstream, proxy = self._upstream, self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                decision = proxy._decide(self.command, self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if decision == "stall":
                    proxy._healed.wait(STALL_CAP_S)
                    self.close_connection = True
                    return
                if decision == "drop upload":
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    return
                body = self.rfile.read(length)
                if isinstance(decision, tuple):
                    status, code = decision
                    self._answer_error(status, code)
                    return
                self._pass(body)

            def _answer_error(self, status: int, code: str) -> None:
                payload = proxy._error_body(code, self.headers.get("Authorization", ""))
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _pass(self, body: bytes) -> None:
                connection = http.client.HTTPConnection(
                    upstream.hostname, upstream.port, timeout=60
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                finally:
                    connection.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(payload)))
                if self.command == "GET" and proxy._cut_download(answer.status, len(payload)):
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self._healed.set()  # stalled handlers give up at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        super().close()


def _without_upload_id(path: str) -> str:
    """The request line less the server's random multipart upload id."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "uploadId"]
    return f"{parts.path}?{urlencode(query)}"
