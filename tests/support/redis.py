"""A throwaway redis-server for a test: the engine's (engines/servers/redis.py) in a
temporary folder of the test run."""

from engines.servers import redis
from engines.servers.process import unprivileged_account
from tests.support.processes import TrackedServer, make_server_folder


class RedisServer(TrackedServer, redis.RedisServer):
    def __init__(self, *, password: str | None = None, binary: str | None = None) -> None:
        account = unprivileged_account("redis")
        super().__init__(
            make_server_folder(self.kind, account), account, password=password, binary=binary
        )
