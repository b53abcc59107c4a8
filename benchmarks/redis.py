"""Benchmark Redis backups and restores against redis-cli, side by side in one run.

    .venv/bin/python benchmarks/redis.py                  # 1,000,000 keys (the issue's size)
    .venv/bin/python benchmarks/redis.py --keys 200000    # quicker

Mixed types (half strings, a tenth each of hashes, lists, sets, sorted sets, streams),
10% with a TTL, on throwaway servers. Contenders (each its own process; wall time, size,
peak RSS):
  redis-cli --rdb    redis-cli --rdb FILE (the snapshot over replication, no compression)
  ours rdb gzip-9    the RDB artifact alone: SYNC, structure count, gzip -9, AES-GCM, sha256
  ours rdb zstd      the same with BACKUP_COMPRESSION=zstd
  ours backup        jarvis-tui backup redis: the RDB and the JSON export made from it as it
                     streams past, both stored, read back and checked; gzip -9
  redis-cli --pipe   loading the data set's RESP commands into an empty server
  ours json restore  jarvis-tui restore redis latest --from-json --flush into an empty server
                     (the export of the last "ours backup")
The snapshots (the whole backup among them) and the loads each run a warm-up round, then
ROUNDS rounds (the fastest counts). The load average is printed before and after: the
machine may be shared.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "redis"
CLI = ROOT / ".venv" / "bin" / "jarvis-tui"
PYTHON = ROOT / ".venv" / "bin" / "python"
KEY = "0123456789abcdef" * 4
# This file is called redis.py: keep its folder off the path so `import redis` finds the client.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.rounds import Contender, Result, in_rounds  # noqa: E402

TARGETS = (
    ("ours backup / redis-cli --rdb", "ours backup", "redis-cli --rdb", 5.0),
    ("ours rdb gzip-9 / redis-cli --rdb", "ours rdb gzip-9", "redis-cli --rdb", 2.5),
    ("ours rdb zstd / redis-cli --rdb", "ours rdb zstd", "redis-cli --rdb", 1.3),
    ("ours json restore / redis-cli --pipe", "ours json restore", "redis-cli --pipe", 1.5),
)
RSS_LIMIT_MB = 200
ROUNDS = 3
RDB_ONLY = """
import sys
from pathlib import Path
from engines.config import load_settings
from engines.jobs import run_job
from engines.redis.connection import connected, target_from_settings
from engines.redis.inspect import server_facts, server_time_ms
from engines.redis.rdb_sync import RdbStream
from engines.redis.snapshot_store import store_snapshot
from engines.workspace import Workspace
with Workspace.open(load_settings(env_file=Path(sys.argv[1]))) as ws:
    target = target_from_settings(ws.settings)
    with connected(target) as client:
        facts, now = server_facts(client), server_time_ms(client)
    backup_set = ws.catalog.create_backup_set("redis", tier="manual")
    stored = run_job(ws.catalog, "backup", "bench", lambda ctx: store_snapshot(
        ws, backup_set, RdbStream(target).start(), facts, now, ctx, with_json=False))
    print(stored.rdb.stored_size)
"""


def stored_size(stdout: bytes) -> int:
    """The artifact's stored size, which RDB_ONLY prints last."""
    return int(stdout.split()[-1])


def backup_size() -> int:
    """The stored bytes of the last `backup redis` set (RDB and JSON) in the gzip repository."""
    import sqlite3

    with sqlite3.connect(WORK / "gzip.sqlite3") as catalog:
        (size,) = catalog.execute(
            "SELECT SUM(stored_size) FROM artifacts WHERE set_id = (SELECT set_id FROM artifacts"
            " WHERE relpath LIKE '%redis.json%' AND status = 'complete' ORDER BY id DESC LIMIT 1)"
        ).fetchone()
    return size or 0


def _command(*args: str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def write_dataset(path: Path, keys: int) -> None:
    """RESP commands for `keys` keys of mixed types, 10% with a TTL."""
    rnd = random.Random(1)
    words = [f"word{i}" for i in range(500)]

    def text(n: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(n))

    with open(path, "wb") as out:
        for i in range(keys):
            kind, key = i % 10, f"k:{i % 10}:{i}"
            if kind < 5:
                out.write(_command("SET", key, text(25)))
            elif kind == 5:
                out.write(_command("HSET", key, *[x for j in range(6) for x in (f"f{j}", text(4))]))
            elif kind == 6:
                out.write(_command("RPUSH", key, *[text(4) for _ in range(6)]))
            elif kind == 7:
                out.write(_command("SADD", key, *[text(3) for _ in range(6)]))
            elif kind == 8:
                out.write(
                    _command("ZADD", key, *[x for j in range(6) for x in (str(j * 1.5), text(3))])
                )
            else:
                out.write(_command("XADD", key, "*", "a", text(3), "b", text(3)))
            if i % 10 == 3:
                out.write(_command("EXPIRE", key, "86400"))


def main() -> None:
    from tests.support.redis import RedisServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    dataset = WORK / "dataset.resp"
    print(f"writing {args.keys} keys of RESP ...", flush=True)
    write_dataset(dataset, args.keys)
    results: dict[str, Result] = {}
    with RedisServer() as source, RedisServer() as target:
        env = dict(os.environ)
        cli_host = ["-h", source.host, "-p", str(source.port)]
        with open(dataset, "rb") as commands:
            subprocess.run(["redis-cli", *cli_host, "--pipe"], stdin=commands, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        # Redis waits repl-diskless-sync-delay (5 s) for more replicas before a diskless
        # snapshot; both sides would wait it alike, and it would only hide the work.
        source.client().config_set("repl-diskless-sync-delay", 0)
        rdb = WORK / "cli.rdb"
        snapshots = [
            Contender("redis-cli --rdb", ["redis-cli", *cli_host, "--rdb", str(rdb)], env,
                      size=lambda _: rdb.stat().st_size),
        ]  # fmt: skip
        for codec, name in (("gzip", "ours rdb gzip-9"), ("zstd", "ours rdb zstd")):
            env_file = WORK / f"{codec}.env"
            env_file.write_text(
                f"BACKUP_DIR={WORK / codec}\nBACKUP_CATALOG_PATH={WORK / codec}.sqlite3\n"
                f"BACKUP_LOG_DIR={WORK / 'logs'}\nBACKUP_ENCRYPTION_KEY={KEY}\n"
                f"BACKUP_COMPRESSION={codec}\nREDIS_URL={source.url()}\n"
            )
            snapshots.append(
                Contender(name, [str(PYTHON), "-c", RDB_ONLY, str(env_file)], env,
                          size=stored_size)
            )  # fmt: skip
        env_file = WORK / "gzip.env"
        backup_argv = [str(CLI), "--env-file", str(env_file), "backup", "redis"]
        snapshots.append(Contender("ours backup", backup_argv, env, size=lambda _: backup_size()))
        results.update(in_rounds(snapshots, ROUNDS, WORK))
        with open(env_file, "a") as settings:
            settings.write(f"REDIS_URL={target.url()}\n")
        empty_target = target.flush
        loads = [
            Contender("redis-cli --pipe",
                      ["redis-cli", "-h", target.host, "-p", str(target.port), "--pipe"], env,
                      stdin=dataset, before=empty_target),
            Contender("ours json restore",
                      [str(CLI), "--env-file", str(env_file), "restore", "redis", "latest",
                       "--from-json", "--flush"], env, before=empty_target),
        ]  # fmt: skip
        results.update(in_rounds(loads, ROUNDS, WORK))
        restored = target.client().dbsize()
    load_after = os.getloadavg()
    print(f"\n{args.keys} keys; restored {restored}; load average before "
          f"{' '.join(f'{x:.2f}' for x in load_before)}, after "
          f"{' '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} cores)")  # fmt: skip
    print(f"{'contender':<20} {'seconds':>9} {'MiB out':>9} {'peak RSS MB':>12}")
    for result in results.values():
        print(f"{result.name:<20} {result.seconds:>9.2f} {result.size / 2**20:>9.1f} "
              f"{result.peak_rss_mb:>12.0f}")  # fmt: skip
    print()
    for label, numerator, denominator, limit in TARGETS:
        ratio = results[numerator].seconds / results[denominator].seconds
        verdict = "ok" if ratio <= limit else "OVER"
        print(f"{label:<40} {ratio:5.2f}x (target <= {limit}x) {verdict}")
    rate = args.keys / results["ours json restore"].seconds
    print(f"JSON restore rate: {rate:,.0f} keys/s (target >= 150,000)")
    worst = max(r.peak_rss_mb for n, r in results.items() if n.startswith("ours"))
    print(f"peak RSS of ours: {worst:.0f} MB (target < {RSS_LIMIT_MB} MB); "
          f"ours backup: {results['ours backup'].peak_rss_mb:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
