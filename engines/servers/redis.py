"""A redis-server of our own on a free loopback port."""

import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from engines.servers.process import LOOPBACK, Account, ProcessServer


class RedisServer(ProcessServer):
    kind = "redis"

    def __init__(
        self,
        base_dir: Path,
        account: Account | None,
        *,
        password: str | None = None,
        binary: str | None = None,
        detached: bool = False,
    ) -> None:
        found = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).is_file():
            raise RuntimeError("redis-server not found; install the `redis-server` package")
        self.binary = found
        self.password = password
        super().__init__(base_dir, account, detached=detached)

    def _argv(self, port: int) -> list[str]:
        argv = [
            self.binary,
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.base_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def _answers(self, port: int) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(
            self.host, port, password=self.password, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        try:
            return client.info("server")["process_id"] == self.pid
        except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
            return False
        finally:
            client.close()

    def url(self, db: int = 0) -> str:
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **options: Any):
        import redis

        return redis.Redis(self.host, self.port, db=db, password=self.password, **options)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()
