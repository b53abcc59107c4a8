"""Redis test data of every type (binary keys and values, TTLs, several databases, keys
big enough to be read in pieces), a fingerprint to compare copies, and the CLI case."""

import subprocess
import threading
from pathlib import Path

from engines.redis.connection import connected, target_from_url
from engines.redis.inspect import server_facts
from engines.redis.json_export import JsonExporter
from jarvis_tui.cli import main
from tests.support.redis import RedisServer

KEY = "0123456789abcdef" * 4
BINARY_KEY = b"bin:\xff\x00\xfe"
BINARY_VALUE = bytes(range(256))
BIG_STRING = b"0123456789" * 150_000  # 1.5 MB: read with several GETRANGE calls
BIG_ITEMS = 2_600  # more than one LRANGE / HSCAN piece
TTL_S = 3600
# Settings under which redis-server keeps every value in its big encoding (hash table, skip
# list, one entry per quicklist node and per stream node) instead of a compact one.
BIG_ENCODINGS = {
    "hash-max-listpack-entries": 0,
    "set-max-intset-entries": 0,
    "zset-max-listpack-entries": 0,
    "list-max-listpack-size": 1,
    "stream-node-max-entries": 1,
}


def rdb_snapshot(server: RedisServer, path: Path) -> bytes:
    """The server's RDB as `redis-cli --rdb` takes it (a replica's SYNC), kept at `path`."""
    subprocess.run(["redis-cli", "-h", server.host, "-p", str(server.port), "--rdb", str(path)],
                   check=True, capture_output=True)  # fmt: skip
    return path.read_bytes()


def scan_export(server: RedisServer) -> list[bytes]:
    """The server's JSON export made with SCAN (engines/redis/json_export.py), line by
    line: header, key lines (in SCAN's order), trailer."""
    target = target_from_url(server.url())
    with connected(target) as client:
        facts = server_facts(client)
    return list(JsonExporter(target, facts).lines())


def fast_sync(server: RedisServer) -> None:
    """No 5 s wait for more replicas before a diskless snapshot (Redis's default)."""
    server.client().config_set("repl-diskless-sync-delay", 0)


def backed_up_then_changed(server: RedisServer, case: "RedisCase", *backup: str) -> None:
    """An emptied server's one key `kept` backed up (`backup`: the CLI's words), then changed
    and a `stray` key added; `assert_as_backed_up` checks a flushing restore undid both."""
    fast_sync(server)
    server.flush()
    client = server.client()
    client.set("kept", "from the backup")
    assert case.cli(*backup) == 0
    client.set("kept", "changed later")
    client.set("stray", "added later")


def assert_as_backed_up(server: RedisServer) -> None:
    client = server.client()
    assert client.get("kept") == b"from the backup"
    assert client.get("stray") is None


def seed(server: RedisServer) -> None:
    server.flush()
    fast_sync(server)
    c = server.client()
    c.set("greeting", "Grüße, ユーザー 🎵")
    c.set(BINARY_KEY, BINARY_VALUE)
    c.set("counter", 42)
    c.set("empty", "")
    c.set("session:1", "token", ex=TTL_S)
    c.set("big:string", BIG_STRING)
    c.rpush("list", "a", "b", "a", b"\x00\xff")
    c.rpush("big:list", *[f"item-{i}" for i in range(BIG_ITEMS)])
    c.sadd("set", "x", "y", b"\xfe")
    c.sadd("set:ints", *range(50))
    c.zadd("zset", {"low": -1.25, "high": 1e300, "inf": float("inf"), b"\xff": 0})
    c.hset("hash", mapping={"name": "Zoë", b"\xffbin": b"\x00\x01"})
    c.hset("big:hash", mapping={f"f{i}": f"v{i}" for i in range(BIG_ITEMS)})
    c.expire("hash", TTL_S)
    c.xadd("stream", {"event": "play", "track": "Träumerei"}, id="1-1")
    c.xadd("stream", {"event": "pause"}, id="2-0")
    c.xadd("stream", {"event": "gone"}, id="3-0")
    c.xdel("stream", "3-0")
    c.xgroup_create("stream", "workers", id="1-1")
    c.xgroup_create("empty:stream", "g", id="$", mkstream=True)
    c3 = server.client(3)
    c3.set("db3:key", "three")
    c3.sadd("db3:set", "a", "b")
    server.client(5).hset("db5:hash", "k", "v")


def _value(client, key: bytes, kind: str):
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return sorted(client.smembers(key))
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "hash":
        return sorted(client.hgetall(key).items())
    info = client.xinfo_stream(key)
    groups = [(g["name"], g["last-delivered-id"]) for g in client.xinfo_groups(key)]
    return client.xrange(key), info["last-generated-id"], groups


def fingerprint(server: RedisServer, dbs=(0, 3, 5)) -> dict:
    """Per database: key -> (type, value); expiries separately (absolute, ms)."""
    result = {}
    for db in dbs:
        client = server.client(db)
        keys = {}
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            keys[key] = (kind, _value(client, key, kind))
        result[db] = keys
    return result


def expiries(server: RedisServer, dbs=(0, 3, 5)) -> dict:
    found = {}
    for db in dbs:
        client = server.client(db)
        for key in client.scan_iter(count=1000):
            at = client.execute_command("PEXPIRETIME", key)
            if at > 0:
                found[(db, key)] = at
    return found


class RedisCase:
    """Settings for one test: repository in tmp, REDIS_URL pointing at `server`."""

    def __init__(self, tmp_path: Path, server: RedisServer | None, url: str | None = None):
        self.tmp_path = tmp_path
        self.env_file = tmp_path / "jarvis.env"
        self.point_at(server, url=url)

    def point_at(self, server: RedisServer | None, url: str | None = None, **extra: str) -> None:
        assert server is not None or url is not None
        lines = {
            "BACKUP_DIR": str(self.tmp_path / "repo"),
            "BACKUP_CATALOG_PATH": str(self.tmp_path / "catalog.sqlite3"),
            "BACKUP_LOG_DIR": str(self.tmp_path / "logs"),
            "BACKUP_ENCRYPTION_KEY": KEY,
            "REDIS_URL": url or server.url(),  # type: ignore[union-attr]
            **extra,
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))

    def cli(self, *argv: str) -> int:
        return main(["--env-file", str(self.env_file), *argv])

    def workspace(self):
        from engines.config import load_settings
        from engines.workspace import Workspace

        return Workspace.open(load_settings(env_file=self.env_file))

    def artifacts(self):
        with self.workspace() as workspace:
            latest = workspace.catalog.get_backup_set("latest", "redis")
            return {a.mode: a for a in workspace.catalog.artifacts_of(latest.id)}

    def artifact_path(self, mode: str) -> Path:
        return self.tmp_path / "repo" / self.artifacts()[mode].relpath


class BackupInThread:
    """`backup redis` of a case run as a job in a thread of its own, so that a test can
    cancel it through its JobContext; `outcome` holds what the job raised."""

    def __init__(self, case: RedisCase):
        self.case = case
        self.contexts: list = []
        self.outcome: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "BackupInThread":
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.contexts[0].cancel()

    def _back_up(self, context) -> None:
        from engines.actions import backup
        from engines.actions.verbs import Request

        self.contexts.append(context)
        with self.case.workspace() as workspace:
            backup.run(workspace, Request(kind="redis"), context)

    def _run(self) -> None:
        from engines.jobs import run_job

        with self.case.workspace() as workspace:
            try:
                run_job(workspace.catalog, "backup", "cancel test", self._back_up)
            except BaseException as error:  # handed to the test thread
                self.outcome.append(error)
