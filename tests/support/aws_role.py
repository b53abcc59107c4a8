"""Role credentials on loopback, as ECS hands a task its role's: botocore's container
provider fetches them from AWS_CONTAINER_CREDENTIALS_FULL_URI, so the process holds no
long-lived keys and boto3 reports them as `container-role`."""

import json
from http.server import BaseHTTPRequestHandler

from tests.support.loopback_http import LoopbackHTTPServer, send

FAR_EXPIRY = "2099-01-01T00:00:00Z"  # never refreshed during a test, whatever the clock


class RoleCredentialsServer(LoopbackHTTPServer):
    def __init__(self, access_key: str, secret_key: str) -> None:
        self._body = json.dumps(
            {
                "AccessKeyId": access_key,
                "SecretAccessKey": secret_key,
                "Token": "role-session-token",
                "Expiration": FAR_EXPIRY,
            }
        ).encode()
        super().__init__()

    @property
    def url(self) -> str:
        return f"{self.endpoint_url}/role-credentials"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, "application/json", self._body)
