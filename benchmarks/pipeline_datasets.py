"""The data sets `pipeline.py` compresses besides its mixed file: what the product stores.

    pgbench.dump     pg_dump --format=custom --compress=0 of a pgbench database
    realistic.dump   the same of benchmarks/postgres.py's realistic database
    redis.rdb        redis-cli --rdb of benchmarks/redis.py's data set
    redis.json       our JSON export of that data set (jarvis-tui backup redis, decrypted)

The dumps are what `backup postgres` feeds the compressor (pg_dump's own compression
off); each set is made once on throwaway servers and cached under benchmarks/.work/.
"""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "pipeline-data"
CLI = ROOT / ".venv" / "bin" / "jarvis-tui"
NAMES = ("pgbench.dump", "realistic.dump", "redis.rdb", "redis.json")
# benchmarks/redis.py must not stand in for the redis client: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))


def ensure_datasets(pg_size_mib: int, redis_keys: int) -> list[Path]:
    folder = WORK / f"pg{pg_size_mib}-redis{redis_keys}"
    paths = [folder / name for name in NAMES]
    if all(path.exists() for path in paths):
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _make_dumps(folder, pg_size_mib)
    _make_redis(folder, redis_keys)
    return paths


def _make_dumps(folder: Path, size_mib: int) -> None:
    from benchmarks.postgres import seed_pgbench, seed_realistic
    from tests.support.postgres import PostgresServer

    server = PostgresServer(settings={"shared_buffers": "256MB", "max_wal_size": "4GB"}).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST=server.host, PGPORT=str(server.port), PGUSER="postgres")
        for database, seed in (("pgbench", seed_pgbench), ("realistic", seed_realistic)):
            print(f"seeding {database} (~{size_mib} MiB) ...", flush=True)
            seed(server, size_mib)
            with open(folder / f"{database}.dump", "wb") as out:
                subprocess.run(
                    [f"{server.bin_dir}/pg_dump", "--format=custom", "--compress=0", database],
                    env=env,
                    stdout=out,
                    check=True,
                )
    finally:
        server.close()


def _make_redis(folder: Path, keys: int) -> None:
    from benchmarks.redis import write_dataset
    from engines.pipeline.artifacts import open_artifact_plain
    from engines.pipeline.crypto import Keyring, MasterKey
    from tests.support.redis import RedisServer

    scratch = folder / "redis-work"
    scratch.mkdir()
    commands = scratch / "dataset.resp"
    print(f"writing {keys} Redis keys ...", flush=True)
    write_dataset(commands, keys)
    key = secrets.token_hex(32)
    with RedisServer() as server:
        host = ["-h", server.host, "-p", str(server.port)]
        with open(commands, "rb") as stdin:
            subprocess.run(
                ["redis-cli", *host, "--pipe"], stdin=stdin, stdout=subprocess.DEVNULL, check=True
            )
        server.client().config_set("repl-diskless-sync-delay", 0)
        subprocess.run(
            ["redis-cli", *host, "--rdb", str(folder / "redis.rdb")],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        env_file = scratch / "bench.env"
        env_file.write_text(
            f"BACKUP_DIR={scratch / 'repo'}\nBACKUP_CATALOG_PATH={scratch / 'catalog.sqlite3'}\n"
            f"BACKUP_LOG_DIR={scratch / 'logs'}\nBACKUP_ENCRYPTION_KEY={key}\n"
            f"REDIS_URL={server.url()}\n"
        )
        subprocess.run(
            [str(CLI), "--env-file", str(env_file), "backup", "redis"],
            stdout=subprocess.DEVNULL,
            check=True,
        )
    (export,) = (scratch / "repo").rglob("*_redis.json.gz.enc")
    keyring = Keyring(MasterKey.from_hex(key))
    with open_artifact_plain(export, keyring) as plain, open(folder / "redis.json", "wb") as out:
        shutil.copyfileobj(plain, out, 1 << 20)
    shutil.rmtree(scratch)


if __name__ == "__main__":
    for made in ensure_datasets(int(sys.argv[1]), int(sys.argv[2])):
        print(made, made.stat().st_size)
