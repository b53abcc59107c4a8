"""The world `trials.py` attacks: throwaway PostgreSQL and Redis, real data, a repository,
and the real `jarvis-tui` run as its own process.

Everything lives under one work folder; the servers are the tests' own (tests/support/:
free loopback ports, an unprivileged account when run as root).
"""

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/redis.py would shadow the Redis client: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from engines.plumbing.fsutil import TEMP_MARKER  # noqa: E402
from tests.support import redis_seed  # noqa: E402
from tests.support.files_env import CLEARED_PREFIXES  # noqa: E402
from tests.support.pg_seed import fingerprint as pg_fingerprint  # noqa: E402
from tests.support.pg_seed import seed_database  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402

CLI = ROOT / ".venv" / "bin" / "jarvis-tui"
KEY = "89abcdef01234567" * 4
OLD_KEY = "0123456789abcdef" * 4
SOURCE_DB = "trials_src"
TARGET_DB = "trials_target"
DOTENV = "API_TOKEN=sk-live-trials-0001\nDB_PASSWORD=hunter2-trials\nMODE=production\n"
EXTRA_TABLE = """
CREATE TABLE public.events AS
SELECT g AS id, md5(g::text) AS digest, repeat(md5((g * 7)::text), 3) AS body
FROM generate_series(1, {rows}) AS g;
ALTER TABLE public.events ADD PRIMARY KEY (id);
"""


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.out + self.err

    def brief(self) -> str:
        lines = [ln for ln in (self.err or self.out).splitlines() if ln.strip()]
        return f"{' '.join(self.args)} -> {self.code}: {lines[-1][:160] if lines else ''}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_digest(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry below `folder`: files by content and mode, links by target, folders."""
    found: dict[str, str] = {}
    if not folder.exists():
        return found
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if any(part in relative for part in skip):
            continue
        if path.is_symlink():
            found[relative] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[relative] = "dir"
        elif path.is_file():
            found[relative] = f"{oct(path.stat().st_mode & 0o777)}:{sha(path.read_bytes())}"
    return found


def child_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_PREFIXES)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local/state"),
        TZ="UTC",
        LC_ALL="C.UTF-8",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


class World:
    """One repository with every source configured, over real servers and real data."""

    def __init__(self, root: Path, *, seed: int, files: int, pg_rows: int, redis_keys: int):
        self.root = root
        self.seed = seed
        self.file_count = files
        self.pg_rows = pg_rows
        self.redis_keys = redis_keys
        self.home = root / "home"
        self.data = root / "data"
        self.dotenv = root / "app" / "app.env"
        self.conf = root / "app" / "conf"
        self.env_file = root / "jarvis.env"
        self.repo = root / "repo"
        self.catalog_path = root / "state" / "catalog.sqlite3"
        self.logs = root / "logs"
        self.out = root / "out"
        self.pg = PostgresServer()
        self.redis = RedisServer()
        self.settings: dict[str, str] = {}
        self.generation = 0

    # --- set-up --------------------------------------------------------------------------

    def start(self) -> "World":
        for folder in (self.home, self.data, self.conf, self.out, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.pg.start()
        self.redis.start()
        self.seed_postgres()
        self.seed_redis()
        self.write_files()
        self.dotenv.write_text(DOTENV)
        self.dotenv.chmod(0o600)
        self.write_config()
        self.configure()
        return self

    def close(self) -> None:
        for server in (self.redis, self.pg):
            try:
                server.close()
            except Exception as error:  # teardown goes on
                print(f"closing {server.kind}: {error}", file=sys.stderr)

    def configure(self, **extra: str) -> None:
        self.settings = {
            "BACKUP_DIR": str(self.repo),
            "BACKUP_CATALOG_PATH": str(self.catalog_path),
            "BACKUP_LOG_DIR": str(self.logs),
            "BACKUP_ENCRYPTION_KEY": KEY,
            "BACKUP_COMPRESSION": "zstd",
            "POSTGRES_HOST": self.pg.host,
            "POSTGRES_PORT": str(self.pg.port),
            "POSTGRES_USER": self.pg.user,
            "POSTGRES_DB": SOURCE_DB,
            "REDIS_URL": self.redis.url(),
            "BACKUP_FILE_PATHS": str(self.data),
            "BACKUP_SECRET_FILES": str(self.dotenv),
            "BACKUP_CONFIG_PATHS": str(self.conf),
            **extra,
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))

    def seed_postgres(self) -> None:
        seed_database(
            self.pg, SOURCE_DB, users=max(20, self.pg_rows // 50), orders=self.pg_rows // 10
        )
        self.pg.execute(EXTRA_TABLE.format(rows=self.pg_rows), dbname=SOURCE_DB)
        self.pg.execute("VACUUM ANALYZE", dbname=SOURCE_DB)

    def seed_redis(self) -> None:
        redis_seed.seed(self.redis)
        client = self.redis.client()
        rnd = random.Random(self.seed)
        with client.pipeline(transaction=False) as pipe:
            for i in range(self.redis_keys):
                kind = i % 4
                if kind == 0:
                    pipe.set(f"user:{i}", f"name-{rnd.random()}" * 4)
                elif kind == 1:
                    pipe.hset(f"profile:{i}", mapping={"a": i, "b": rnd.random()})
                elif kind == 2:
                    pipe.rpush(f"queue:{i}", *[f"job-{j}" for j in range(5)])
                else:
                    pipe.zadd(f"rank:{i}", {f"m{j}": j * 1.5 for j in range(4)})
            pipe.execute()

    def write_files(self) -> None:
        rnd = random.Random(self.seed)
        for i in range(self.file_count):
            folder = self.data / f"user{i % 12:02d}" / f"album{i % 5}"
            folder.mkdir(parents=True, exist_ok=True)
            if i % 97 == 3:
                size = 1_500_000 + rnd.randrange(1_500_000)  # cut by the rolling hash
            elif i % 5 == 0:
                size = rnd.randrange(20_000, 200_000)
            else:
                size = rnd.randrange(0, 12_000)
            body = rnd.randbytes(size) if i % 2 else _text(rnd, size)
            (folder / f"file-{i:04d}.bin").write_bytes(body)
        (self.data / "user00" / "latest").symlink_to("album0")
        (self.data / "empty-folder").mkdir(exist_ok=True)

    def write_config(self) -> None:
        for i in range(12):
            sub = self.conf / ("nginx" if i % 2 else "app")
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"site{i}.conf").write_text(f"server {{ listen {8000 + i}; }}\n" * (i + 1))

    def change_sources(self) -> None:
        """Move every source on, so consecutive backups differ."""
        self.generation += 1
        generation = self.generation
        rnd = random.Random(self.seed * 1000 + generation)
        for i in range(0, self.file_count, 7):
            path = self.data / f"user{i % 12:02d}" / f"album{i % 5}" / f"file-{i:04d}.bin"
            path.write_bytes(rnd.randbytes(rnd.randrange(100, 8000)))
        (self.data / f"new-{generation}.txt").write_text(f"generation {generation}\n")
        first = 10_000_000 + generation * 1000
        self.pg.execute(
            "INSERT INTO public.events SELECT g, md5(g::text), 'gen' "
            f"FROM generate_series({first}, {first + 99}) g",
            dbname=SOURCE_DB,
        )
        self.redis.client().set(f"generation:{generation}", generation)
        self.dotenv.write_text(DOTENV + f"GENERATION={generation}\n")
        (self.conf / "app" / "generation.conf").write_text(f"generation = {generation}\n")

    # --- running the CLI -----------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        return [str(CLI), "--env-file", str(self.env_file), *args]

    def run(self, *args: str, timeout: float = 600, prefix: tuple[str, ...] = ()) -> Run:
        started = time.monotonic()
        result = subprocess.run(
            [*prefix, *self.argv(*args)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_environment(self.home),
        )
        return Run(
            args, result.returncode, result.stdout, result.stderr, time.monotonic() - started
        )

    def start_process(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_environment(self.home),
        )

    # --- looking -------------------------------------------------------------------------

    def catalog_rows(self, query: str, *params: object) -> list[tuple]:
        db = sqlite3.connect(f"file:{self.catalog_path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(query, params).fetchall()
        finally:
            db.close()

    def sets(self, kind: str) -> list[str]:
        rows = self.catalog_rows(
            "SELECT id FROM backup_sets WHERE kind = ? AND status = 'complete' ORDER BY created_at",
            kind,
        )
        return [r[0] for r in rows]

    def artifacts(self, set_id: str) -> list[tuple[str, str, str]]:
        """(source, mode, relpath) of each artifact of a set."""
        return self.catalog_rows(
            "SELECT source, mode, relpath FROM artifacts WHERE set_id = ? ORDER BY id", set_id
        )

    def artifact_path(
        self, set_id: str, mode: str | None = None, source: str | None = None
    ) -> Path:
        for artifact_source, artifact_mode, relpath in self.artifacts(set_id):
            if mode in (None, artifact_mode) and source in (None, artifact_source):
                return self.repo / relpath
        raise LookupError(f"no {mode} artifact in {set_id}")

    def databases(self) -> set[str]:
        return {r[0] for r in self.pg.execute("SELECT datname FROM pg_database")}

    def pg_state(self, database: str = SOURCE_DB) -> object:
        if database not in self.databases():
            return None
        return pg_fingerprint(self.pg, database)

    def redis_state(self) -> dict:
        return redis_seed.fingerprint(self.redis, dbs=range(16))

    def nonempty_redis_dbs(self) -> set[int]:
        info = self.redis.client().info("keyspace")
        return {int(name[2:]) for name in info if name.startswith("db")}

    def sources_state(self) -> dict[str, object]:
        return {
            "postgres": self.pg_state(),
            "databases": sorted(self.databases()),
            "redis": self.redis_state(),
            "files": tree_digest(self.data),
            "secrets": self.dotenv.read_bytes() if self.dotenv.exists() else None,
            "config": tree_digest(self.conf),
        }

    def repo_state(self) -> dict[str, str]:
        return tree_digest(self.repo)

    def leftovers(self, *folders: Path) -> list[str]:
        """Temporaries and work folders of the repository (and of `folders`)."""
        found = [str(p) for p in self.repo.rglob(f"*{TEMP_MARKER}*")]
        found += [str(p) for p in self.repo.glob(".*/work-*")]
        cache = self.home / ".cache"
        if cache.exists():
            found += [str(p) for p in cache.rglob("work-*")]
        for folder in folders:
            if folder.exists():
                found += [str(p) for p in folder.rglob(f"*{TEMP_MARKER}*")]
                found += [str(p) for p in folder.rglob("*.jarvis-restore-*")]
        return found

    # --- repository copies ---------------------------------------------------------------

    def save(self, name: str) -> Path:
        """Copy repository and catalog aside (the catalog through SQLite's backup API)."""
        keep = self.root / "saved" / name
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        shutil.copytree(self.repo, keep / "repo", symlinks=True)
        source = sqlite3.connect(self.catalog_path, timeout=30)
        copy = sqlite3.connect(keep / "catalog.sqlite3")
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
        return keep

    def load(self, name: str) -> None:
        keep = self.root / "saved" / name
        shutil.rmtree(self.repo, ignore_errors=True)
        shutil.copytree(keep / "repo", self.repo, symlinks=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.catalog_path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(keep / "catalog.sqlite3", self.catalog_path)
        self.catalog_path.chmod(0o600)


def _text(rnd: random.Random, size: int) -> bytes:
    words = [b"alpha", b"beta", b"gamma", b"delta", b"music", b"jarvis", b"\xc3\xbcber", b"42"]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + (b"\n" if rnd.random() < 0.1 else b" ")
    return bytes(out[:size])


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (left running after a kill, they are orphans)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def kill_now(process: subprocess.Popen) -> list[int]:
    """SIGKILL the command alone, as the OOM killer would; its children are left to see."""
    children = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return children
