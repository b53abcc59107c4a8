"""Benchmark `jarvis-tui backup/restore postgres` against pg_dump, the guide's pipeline and
pg_restore, on a pgbench database and a realistic one, on a throwaway PostgreSQL server.

    .venv/bin/python benchmarks/postgres.py                 # two ~1 GiB databases
    .venv/bin/python benchmarks/postgres.py --size-mib 256  # quicker

Contenders per database (each its own process; wall time, output size, peak RSS), in
rounds (BACKUP_ROUNDS, RESTORE_ROUNDS) after a warm-up:
  ours backup      jarvis-tui backup postgres (custom format, gzip-9, AES-GCM, sha256,
                   row counts in the dump's snapshot, globals)
  guide pipeline   pg_dump -Fp | gzip -9 > file
  pg_dump -Fc      pg_dump -Fc -f file (zlib level 6 inside)
  ours restore     jarvis-tui restore postgres --target-db NEW --jobs 2 (authenticate,
                   decrypt, restore into scratch through two COPYs, check counts, rename)
  pg_restore -j 2  pg_restore -j 2 -d NEW of the -Fc dump
"""

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "postgres"
PG_SEED = ROOT.parent / "shared" / "bench" / "pg_seed.sh"  # ../shared/bench
CLI = ROOT / ".venv" / "bin" / "jarvis-tui"
MiB = 1024 * 1024
sys.path.insert(0, str(ROOT))

from benchmarks.rounds import Contender, Result, in_rounds  # noqa: E402

TARGETS = (
    # database, label, numerator, denominator, limit
    ("realistic", "ours backup / guide pipeline", "ours backup", "guide pipeline", 0.8),
    ("pgbench", "ours backup / guide pipeline", "ours backup", "guide pipeline", 1.0),
    ("realistic", "ours restore / pg_restore -j 2", "ours restore", "pg_restore -j 2", 1.15),
    ("pgbench", "ours restore / pg_restore -j 2", "ours restore", "pg_restore -j 2", 1.15),
)
RSS_LIMIT_MB = 150
BACKUP_ROUNDS = 3
RESTORE_ROUNDS = 5

# About 330 bytes a row on disk; text, JSON, UUIDs, timestamps and numbers that compress
# 3-4x, like an application's tables rather than pgbench's padding.
REALISTIC_SQL = """
CREATE TABLE IF NOT EXISTS public.events (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    user_id integer NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    note text,
    amount numeric(12, 2),
    created_at timestamptz NOT NULL
);
INSERT INTO public.events (event_id, user_id, kind, payload, note, amount, created_at)
SELECT gen_random_uuid(),
       (random() * 200000)::int,
       (ARRAY['login', 'logout', 'play', 'pause', 'upload', 'purchase', 'share'])[1 + g % 7],
       jsonb_build_object(
           'ip', '10.' || (g % 256) || '.' || ((g / 256) % 256) || '.' || (random() * 255)::int,
           'agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)', 'Jarvis-iOS/3.2',
                           'Jarvis-Android/3.1', 'curl/8.5'])[1 + g % 4],
           'track', md5((g % 50000)::text),
           'score', round(random()::numeric, 4),
           'tags', jsonb_build_array('ambient', 'focus', 'jazz'))
       , CASE WHEN g % 5 = 0 THEN NULL
              ELSE 'session ' || substr(md5(random()::text), 1, 12) || ' played ' ||
                   (ARRAY['Nocturne', 'Clair de lune', 'Gymnopédie', 'Träumerei'])[1 + g % 4]
         END,
       round((random() * 500)::numeric, 2),
       timestamptz '2025-01-01' + g * interval '7 seconds'
FROM generate_series({start}, {stop}) AS g;
"""


def settle(server) -> None:
    """Start each contender from the same state: no dirty buffers, no pending checkpoint."""
    # The insert-triggered autovacuum of the last restored copy, done now, not during the next.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=server.host, PGPORT=str(server.port), PGUSER="postgres")
    subprocess.run([f"{server.bin_dir}/vacuumdb", "--all", "--quiet"], env=env, check=True)
    server.execute("CHECKPOINT")
    os.sync()


def seed_pgbench(server, size_mib: int) -> None:
    env = {**os.environ, "PGBIN": str(server.bin_dir), "PGHOST": server.host, "PGUSER": "postgres"}
    subprocess.run(["bash", str(PG_SEED), str(server.port), str(size_mib), "pgbench"], env=env,
                   check=True)  # fmt: skip


def seed_realistic(server, size_mib: int) -> None:
    server.create_database("realistic")
    batch = 200_000
    start = 1
    while True:
        size = server.execute("SELECT pg_database_size('realistic')")[0][0]
        if size >= size_mib * MiB:
            break
        server.execute(
            REALISTIC_SQL.format(start=start, stop=start + batch - 1), dbname="realistic"
        )
        start += batch
    server.execute("VACUUM ANALYZE", dbname="realistic")
    server.execute("CHECKPOINT")
    print(f"  realistic: {start - 1} rows, {size / MiB:.0f} MiB")


def bench_database(server, database: str, env_file: Path, tool_env: dict[str, str]):
    bin_dir = server.bin_dir
    database_size = server.execute(f"SELECT pg_database_size('{database}')")[0][0]
    plain = WORK / f"{database}.sql.gz"
    custom = WORK / f"{database}.dump"
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    repository = WORK / "repo" / "postgres"

    def newest_backup() -> Path:
        backups = repository.glob(f"*_{database}_full.dump.gz.enc")
        return max(backups, key=lambda path: path.stat().st_mtime)

    def settled(prepare: Callable[[], None] = lambda: None) -> Callable[[], None]:
        """`prepare`, then the server settled: what runs before each contender's run."""

        def before() -> None:
            prepare()
            settle(server)

        return before

    results = in_rounds(
        [
            Contender(
                "ours backup",
                [str(CLI), "--env-file", str(env_file), "backup", "postgres", "--database",
                 database],
                cli_env,
                before=settled(),
                size=lambda _: newest_backup().stat().st_size,
            ),
            Contender(
                "guide pipeline",
                ["bash", "-c", f"{bin_dir}/pg_dump -Fp {database} | gzip -9 > {plain}"],
                tool_env,
                before=settled(),
                size=lambda _: plain.stat().st_size,
            ),
            Contender(
                "pg_dump -Fc",
                [f"{bin_dir}/pg_dump", "-Fc", "-f", str(custom), database],
                tool_env,
                before=settled(lambda: custom.unlink(missing_ok=True)),
                size=lambda _: custom.stat().st_size,
            ),
        ],
        BACKUP_ROUNDS,
        WORK,
    )  # fmt: skip
    set_id = newest_backup().name.split(f"_{database}_full")[0]
    ours_copy, peer_copy = f"{database}_ours", f"{database}_peer"

    def fresh_peer_copy() -> None:
        server.drop_database(peer_copy)
        server.create_database(peer_copy)

    results |= in_rounds(
        [
            Contender(
                "pg_restore -j 2",
                [f"{bin_dir}/pg_restore", "-j", "2", "-d", peer_copy, str(custom)],
                tool_env,
                before=settled(fresh_peer_copy),
            ),
            Contender(
                "ours restore",
                [str(CLI), "--env-file", str(env_file), "restore", "postgres", set_id,
                 "--target-db", ours_copy, "--jobs", "2"],
                cli_env,
                before=settled(lambda: server.drop_database(ours_copy)),
            ),
        ],
        RESTORE_ROUNDS,
        WORK,
    )  # fmt: skip
    check_restored(server, database)
    for name in (ours_copy, peer_copy):
        server.drop_database(name)
    plain.unlink(missing_ok=True)
    custom.unlink(missing_ok=True)
    return database_size, results


def check_restored(server, database: str) -> None:
    counts = {}
    for name in (database, f"{database}_ours", f"{database}_peer"):
        tables = server.execute(
            "SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY 1, 2", dbname=name
        )
        counts[name] = [
            server.execute(f'SELECT count(*) FROM "{s}"."{t}"', dbname=name)[0][0]
            for s, t in tables
        ]
    if len({tuple(v) for v in counts.values()}) != 1:
        sys.exit(f"restored copies differ from {database}: {counts}")


def report(all_results: dict[str, tuple[int, dict[str, Result]]]) -> bool:
    for database, (size, results) in all_results.items():
        print(f"\n{database}: pg_database_size {size / MiB:.0f} MiB")
        print(
            f"{'contender':<16} {'wall s':>8} {'output MiB':>11} {'ratio':>7} {'peak RSS MB':>12}"
        )
        for r in results.values():
            ratio = f"{size / r.size:6.1f}x" if r.size else "      -"
            print(
                f"{r.name:<16} {r.seconds:>8.2f} {r.size / MiB:>11.1f} {ratio:>7} "
                f"{r.peak_rss_mb:>12.1f}"
            )
    print()
    ok = True
    for database, label, ours, peer, limit in TARGETS:
        if database not in all_results:
            continue
        results = all_results[database][1]
        value = results[ours].seconds / results[peer].seconds
        ok &= value <= limit
        verdict = "ok" if value <= limit else "MISSED"
        print(f"{database:<10} {label:<32} {value:6.2f}x  target <= {limit}x  {verdict}")
    for database, (_, results) in all_results.items():
        for name in ("ours backup", "ours restore"):
            rss = results[name].peak_rss_mb
            ok &= rss < RSS_LIMIT_MB
            verdict = "ok" if rss < RSS_LIMIT_MB else "MISSED"
            print(f"{database:<10} {name + ' peak RSS':<32} {rss:6.1f} MB  target < "
                  f"{RSS_LIMIT_MB} MB  {verdict}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of each database")
    parser.add_argument("--only", choices=("pgbench", "realistic"), help="one database only")
    args = parser.parse_args()
    from tests.support.postgres import PostgresServer

    if shutil.which("time") is None:
        print("GNU time not found (apt-get install -y time): RSS figures include the launcher")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    server = PostgresServer(settings={"shared_buffers": "256MB", "max_wal_size": "4GB"}).start()
    try:
        tool_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        tool_env.update(PGHOST=server.host, PGPORT=str(server.port), PGUSER="postgres")
        env_file = WORK / "bench.env"
        env_file.write_text(
            f"BACKUP_DIR={WORK / 'repo'}\nBACKUP_CATALOG_PATH={WORK / 'catalog.sqlite3'}\n"
            f"BACKUP_LOG_DIR={WORK / 'logs'}\nBACKUP_ENCRYPTION_KEY={secrets.token_hex(32)}\n"
            f"POSTGRES_HOST={server.host}\nPOSTGRES_PORT={server.port}\nPOSTGRES_USER=postgres\n"
        )
        all_results = {}
        for database in ("pgbench", "realistic"):
            if args.only and database != args.only:
                continue
            print(f"seeding {database} (~{args.size_mib} MiB) ...", flush=True)
            if database == "pgbench":
                seed_pgbench(server, args.size_mib)
            else:
                seed_realistic(server, args.size_mib)
            all_results[database] = bench_database(server, database, env_file, tool_env)
    finally:
        server.close()
        shutil.rmtree(WORK, ignore_errors=True)
    return 0 if report(all_results) else 1


if __name__ == "__main__":
    sys.exit(main())
