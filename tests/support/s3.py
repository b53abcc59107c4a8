"""moto's S3 server over HTTP on loopback."""

import urllib.parse
import urllib.request
from typing import Self

from tests.support.processes import LOOPBACK, Server


class S3Server(Server):
    """moto's S3 over real HTTP on loopback; `reset()` forgets every bucket."""

    host = LOOPBACK
    region = "us-east-1"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self) -> None:
        self.port = 0
        self._server = None
        super().__init__()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer

        if self._server is None:
            # Port 0: the kernel picks a free port at bind time, so no race with other runs.
            self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._server.start()
            self.port = self._server.get_host_and_port()[1]
        return self

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def close(self) -> None:
        self.stop()
        super().close()


# --- SMTP ----------------------------------------------------------------------------------
