"""Role credentials on loopback, as ECS hands a task its role's: botocore's container
provider fetches them from AWS_CONTAINER_CREDENTIALS_FULL_URI, so the process holds no
long-lived keys and boto3 reports them as `container-role`."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from tests.support.processes import LOOPBACK, Server

FAR_EXPIRY = "2099-01-01T00:00:00Z"  # never refreshed during a test, whatever the clock


class RoleCredentialsServer(Server):
    def __init__(self, access_key: str, secret_key: str) -> None:
        self._body = json.dumps(
            {
                "AccessKeyId": access_key,
                "SecretAccessKey": secret_key,
                "Token": "role-session-token",
                "Expiration": FAR_EXPIRY,
            }
        ).encode()
        self._server: ThreadingHTTPServer | None = None
        super().__init__()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/role-credentials"

    def start(self) -> Self:
        body = self._body

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        super().close()
