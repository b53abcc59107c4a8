"""Benchmark point-in-time recovery (issue #16): archiving and restoring to a moment, ours
and `cp` side by side in one run, on one throwaway PostgreSQL cluster of pgbench data.

    .venv/bin/python benchmarks/pitr.py        # 64 segments, 300 s of pgbench, 1 GiB + 2 GiB WAL
    .venv/bin/python benchmarks/pitr.py --segments 16 --duration 20 --size 100MB --wal 200MB

Ours is what an operator sets up: archive_command as `jarvis-tui pitr setup --apply` writes
it, and `restore postgres --pitr ... --start`, which writes its own restore_command and
starts the server (under root, jarvis-tui runs such that what it writes is runnable by
PostgreSQL's account: see pitr_cluster.jarvis_for), with the default settings (WAL codec,
encryption, asynchronous push, prefetch); --setting adds to them. The peer archives with
`test ! -f DIR/%f && cp %p DIR/%f` and restores with `cp DIR/%f %p`. The peer goes first
in every part; each contender starts once no process of ours is left running.

  archive   --segments segments of pgbench WAL held back (archive_command ''), then the
            command set and reloaded: segments per second until archived_count grew by
            that many and no .ready file is left. Target: ours >= 10 segments/s.
  lag       pgbench at full speed (--clients) for --duration seconds; every second the
            .ready backlog and pg_stat_archiver; the backlog's maximum, final value and
            slope over the last half, then the time to drain. Target: ours never grows.
  restore   a base backup each (ours: backup postgres --mode base; the peer's:
            pg_basebackup -Ft -X fetch), then --wal of pgbench WAL and a moment between two
            last writes. Timed from the restore command to the server promoted at the
            target: ours `restore postgres --pitr --target-time T --start`; the peer's
            tar -x + recovery settings + start. Target: ours <= 1.2x the peer's.
"""

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SEED = ROOT.parent / "shared" / "bench" / "pg_seed.sh"  # ../shared/bench
sys.path.insert(0, str(ROOT))

from benchmarks.pitr_cluster import (  # noqa: E402
    SEGMENT,
    Cluster,
    RestoredCluster,
    StartedCopy,
    jarvis_for,
    wait_for_our_workers,
)
from engines.config import VARIABLES  # noqa: E402
from engines.servers.process import free_port  # noqa: E402

MiB = 1024 * 1024
RATE_TARGET = 10.0  # segments per second
RESTORE_LIMIT = 1.2
GROWTH_LIMIT = 2.0  # segments the backlog may gain over the last half before it "grows"
PARTS = ("archive", "lag", "restore")
SETTINGS = {"shared_buffers": "256MB"}
# The WAL archived and replayed in volume: pgbench's accounts updated a thousand rows per
# transaction, which writes gigabytes in minutes where TPC-B takes ten times as long.
BULK_SCRIPT = """\\set aid random(1, :rows - 999)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN :aid AND :aid + 999;
"""


def size(text: str) -> int:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text.strip(), re.IGNORECASE)
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r}: give a size such as 100MB or 2GiB")
    power = " KMGT".index(found.group(2).upper() or " ")
    return int(float(found.group(1)) * 1024**power)


@dataclass
class Bench:
    source: Cluster
    work: Path
    env_file: Path
    ours: str  # archive_command
    peer_archive: Path
    clients: int
    script: Path | None  # what makes WAL to measure (None: pgbench's TPC-B)
    jarvis: list[str]  # how jarvis-tui is run (see pitr_cluster.jarvis_for)

    @property
    def peer(self) -> str:
        return f"test ! -f {self.peer_archive}/%f && cp %p {self.peer_archive}/%f"

    def cli(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        done = subprocess.run([*self.jarvis, "--env-file", str(self.env_file), *args],
                              env=env, capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"jarvis-tui {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def contenders(self) -> list[tuple[str, str]]:
        return [("cp", self.peer), ("ours", self.ours)]

    def turn(self) -> None:
        """Each contender alone: no process of ours working beside it (nor ahead of it)."""
        wait_for_our_workers(self.env_file)


def prepare(args: argparse.Namespace, work: Path) -> Bench:
    source = Cluster(settings=SETTINGS).start()
    print(f"seeding pgbench (~{args.size // MiB} MiB) ...", flush=True)
    env = {**source.tool_env(), "PGBIN": str(source.bin_dir)}
    subprocess.run(["bash", str(PG_SEED), str(source.port), str(args.size // MiB), "pgbench"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    env_file = work / "jarvis.env"
    extra = "".join(f"{setting}\n" for setting in args.setting)
    env_file.write_text(
        f"BACKUP_DIR={work / 'repository'}\nBACKUP_CATALOG_PATH={work / 'catalog.db'}\n"
        f"BACKUP_LOG_DIR={work / 'logs'}\nBACKUP_ENCRYPTION_KEY={secrets.token_hex(32)}\n"
        f"DATABASE_URL={source.url()}\n{extra}"
    )
    for folder in ("repository", "logs", "peer-archive"):
        (work / folder).mkdir()
    source.give_access(work)
    script = None
    if args.wal_load == "bulk":
        script = work / "bulk.sql"
        script.write_text(BULK_SCRIPT)
    jarvis = jarvis_for(source.account, work)
    bench = Bench(source, work, env_file, "", work / "peer-archive", args.clients, script, jarvis)
    bench.cli("pitr", "setup", "--apply")
    source.give_access(work)  # setup wrote the archive's cluster record as root
    bench.ours = source.value("SHOW archive_command")
    print(f"archive_command: {bench.ours}")
    if args.setting:
        print(f"our settings beyond the defaults: {', '.join(args.setting)}")
    print("  " + bench.cli("pitr", "check").strip())
    return bench


@dataclass
class Throughput:
    segments: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.segments / self.seconds


def archive_throughput(bench: Bench, segments: int) -> dict[str, Throughput]:
    pg, results = bench.source, {}
    for name, command in bench.contenders():
        bench.turn()
        pg.set_archive_command("")  # archiving held back: .ready files pile up
        pg.make_wal(segments * SEGMENT, bench.clients, bench.script)
        pg.value("SELECT pg_switch_wal()")
        held, before = pg.ready_files(), pg.archiver()[0]
        print(f"  {name}: {held} segments held back, archiving ...", flush=True)
        started = time.perf_counter()
        pg.set_archive_command(command)
        pg.wait_archived(60 + held * 10, since_count=before + held)
        results[name] = Throughput(held, time.perf_counter() - started)
        print(f"  {name}: {results[name].rate:.1f} segments/s", flush=True)
    return results


@dataclass
class Lag:
    # seconds since the start, .ready files, archived_count, failed_count
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    tps: float = 0.0
    wal_bytes: int = 0
    seconds: float = 0.0
    drain_s: float = 0.0

    def slope(self) -> float:
        """Least-squares growth of the backlog over the last half, segments per second."""
        half = [(t, r) for t, r, _, _ in self.samples if t >= self.seconds / 2]
        if len(half) < 2:
            return 0.0
        mean_t = sum(t for t, _ in half) / len(half)
        mean_r = sum(r for _, r in half) / len(half)
        spread = sum((t - mean_t) ** 2 for t, _ in half)
        return sum((t - mean_t) * (r - mean_r) for t, r in half) / spread if spread else 0.0

    @property
    def grew(self) -> bool:
        return self.slope() * self.seconds / 2 > GROWTH_LIMIT

    @property
    def failures(self) -> int:
        return self.samples[-1][3] - self.samples[0][3] if self.samples else 0


def archiver_lag(bench: Bench, duration: int) -> dict[str, Lag]:
    pg, results = bench.source, {}
    for name, command in bench.contenders():
        pg.set_archive_command(command)
        pg.wait_archived(600)
        bench.turn()
        # What pgbench does before a run unless -n, done before the sampling starts.
        for statement in ("VACUUM pgbench_branches", "VACUUM pgbench_tellers",
                          "TRUNCATE pgbench_history"):  # fmt: skip
            pg.execute(statement, dbname="pgbench")
        pg.execute("CHECKPOINT")
        print(f"  {name}: pgbench -c {bench.clients} for {duration} s ...", flush=True)
        lag, wal_start = Lag(), pg.wal_position()
        argv = pg.pgbench("-c", str(bench.clients), "-j", str(min(bench.clients, 2)),
                          "-T", str(duration))  # fmt: skip
        started = time.perf_counter()
        run = subprocess.Popen(argv, env=pg.tool_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        tick = started
        while run.poll() is None:
            archived, failed, _ = pg.archiver()
            lag.samples.append((time.perf_counter() - started, pg.ready_files(), archived, failed))
            tick += 1.0
            time.sleep(max(0.0, tick - time.perf_counter()))
        lag.seconds = time.perf_counter() - started
        lag.wal_bytes = pg.wal_position() - wal_start
        assert run.stdout is not None
        found = re.search(r"tps = ([\d.]+)", run.stdout.read())
        lag.tps = float(found.group(1)) if found else 0.0
        lag.drain_s = pg.wait_archived(600)
        backlog = [r for _, r, _, _ in lag.samples]
        print(f"  {name}: {lag.tps:.0f} tps, backlog max {max(backlog)}, final {backlog[-1]}, "
              f"drained in {lag.drain_s:.1f} s", flush=True)  # fmt: skip
        results[name] = lag
    return results


@dataclass
class Restore:
    seconds: float
    base_s: float  # the base backup's own time, for reference
    fingerprint: str  # what pgbench left in the copy, to compare the two


MARKS = "bench_marks"
FINGERPRINT = """SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
    (SELECT count(*) FROM pgbench_history) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches)"""


def restore_to_moment(bench: Bench, wal: int) -> tuple[dict[str, Restore], int]:
    pg = bench.source
    for earlier in bench.peer_archive.iterdir():  # the other parts' WAL: room on the disk
        earlier.unlink()
    pg.set_archive_command(f"cp %p {bench.peer_archive}/%f && {bench.ours}")
    pg.execute(f"CREATE TABLE IF NOT EXISTS {MARKS} (n int)")
    pg.wait_archived(600)
    print("  base backups ...", flush=True)
    peer_base = bench.work / "peer-base"
    started = time.perf_counter()
    subprocess.run([pg.binary("pg_basebackup"), "-D", str(peer_base), "-Ft", "-X", "fetch",
                    "--checkpoint=fast"], env=pg.tool_env(), check=True)  # fmt: skip
    peer_base_s = time.perf_counter() - started
    started = time.perf_counter()
    bench.cli("backup", "postgres", "--mode", "base")
    ours_base_s = time.perf_counter() - started
    pg.next_second()
    print(f"  {wal // MiB} MiB of pgbench WAL ...", flush=True)
    wal_start = pg.wal_position()
    pg.make_wal(wal, bench.clients, bench.script)
    pg.execute(f"INSERT INTO {MARKS} VALUES (1)")
    moment = pg.value("SELECT clock_timestamp()::text")
    pg.execute("SELECT pg_sleep(0.05)")
    pg.execute(f"INSERT INTO {MARKS} VALUES (2)")
    pg.value("SELECT pg_switch_wal()")
    replayed = pg.wal_position() - wal_start
    pg.wait_archived(600 + wal / SEGMENT * 10)
    # Our push worker reads .ready files ahead: alive once the peer archives alone, it
    # stores some later segments (autovacuum's, archive_timeout's) and misses others, and
    # the hole refuses our restore (every segment up to the newest archived is checked).
    wait_for_our_workers(bench.env_file, timeout_s=600)
    pg.set_archive_command(bench.peer)  # nothing of ours runs beside the restores
    print(f"  restoring to {moment} ...", flush=True)
    results = {}
    for name, run in (("cp", restore_peer), ("ours", restore_ours)):
        bench.turn()
        folder = bench.work / f"restored-{name}"
        os.sync()
        started = time.perf_counter()
        copy = run(bench, folder, peer_base, moment)
        try:
            seconds = time.perf_counter() - started
            if copy.value("SELECT pg_is_in_recovery()"):
                sys.exit(f"{name}: the restored server is still in recovery")
            marks = [n for (n,) in copy.execute(f"SELECT n FROM {MARKS} ORDER BY n")]
            if marks != [1]:
                sys.exit(f"{name}: recovered to rows {marks} of {MARKS}, not [1]")
            fingerprint = copy.value(FINGERPRINT, dbname="pgbench")
        finally:
            copy.close()
        base_s = ours_base_s if name == "ours" else peer_base_s
        results[name] = Restore(seconds, base_s, fingerprint)
        print(f"  {name}: {seconds:.1f} s", flush=True)
    if results["cp"].fingerprint != results["ours"].fingerprint:
        sys.exit(f"the restored copies differ: {results}")
    return results, replayed


def wait_promoted(copy: Cluster, timeout_s: float = 3600) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if not copy.value("SELECT pg_is_in_recovery()"):
                return
        except psycopg.OperationalError:
            if not copy.running:
                tail = "\n".join(copy.read_log().splitlines()[-12:])
                sys.exit(f"cp: the restored server stopped during recovery:\n{tail}")
        time.sleep(0.02)
    sys.exit(f"cp: the restored server was not promoted in {timeout_s:.0f} s: {copy.log_path}")


def restore_ours(bench: Bench, folder: Path, _peer_base: Path, moment: str) -> StartedCopy:
    """restore --pitr --start: lays the base backup out, starts the server and returns once
    recovery reached the moment and the server was promoted."""
    copy = StartedCopy(folder, free_port())
    try:
        said = bench.cli("restore", "postgres", "--pitr", "--target-time", moment, "--pgdata",
                         str(folder), "--start", "--port", str(copy.port))  # fmt: skip
    except BaseException:
        copy.close()  # a server it started and left running, if any
        raise
    print("    " + said.strip().replace("\n", "\n    "))
    return copy


def restore_peer(bench: Bench, folder: Path, peer_base: Path, moment: str) -> RestoredCluster:
    started = time.perf_counter()
    folder.mkdir(mode=0o700)
    subprocess.run(["tar", "-xf", str(peer_base / "base.tar"), "-C", str(folder)], check=True)
    print(f"    tar -x: {time.perf_counter() - started:.1f} s")
    with open(folder / "postgresql.auto.conf", "a") as auto:
        auto.write(
            f"restore_command = 'cp {bench.peer_archive}/%f %p'\narchive_mode = 'off'\n"
            f"recovery_target_time = '{moment}'\nrecovery_target_action = 'promote'\n"
        )
    (folder / "recovery.signal").touch()
    copy = RestoredCluster(data_source=folder, settings={**SETTINGS, "archive_mode": "off"})
    wait_promoted(copy.start())
    return copy


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(args, archive, lag, restore) -> bool:
    ok = True
    if archive:
        print(f"\narchiving {archive['ours'].segments} held-back segments of 16 MiB")
        for name, result in archive.items():
            print(f"  {name:<5} {result.seconds:8.2f} s {result.rate:8.1f} segments/s")
        rate = archive["ours"].rate
        ok &= rate >= RATE_TARGET
        print(f"  ours / cp rate {rate / archive['cp'].rate:.2f}x; ours {rate:.1f} segments/s, "
              f"target >= {RATE_TARGET:g}: {verdict(rate >= RATE_TARGET)}")  # fmt: skip
    if lag:
        print(f"\narchiver lag under pgbench -c {args.clients} for {args.duration} s "
              "(.ready files, sampled every second)")  # fmt: skip
        print(f"  {'':<5} {'tps':>7} {'WAL MiB/s':>9} {'max':>5} {'final':>5} "
              f"{'slope/min':>9} {'failed':>6} {'drain s':>7}  grew")  # fmt: skip
        for name, result in lag.items():
            backlog = [r for _, r, _, _ in result.samples]
            print(f"  {name:<5} {result.tps:7.0f} {result.wal_bytes / MiB / result.seconds:9.1f} "
                  f"{max(backlog):5d} {backlog[-1]:5d} {result.slope() * 60:9.2f} "
                  f"{result.failures:6d} {result.drain_s:7.1f}  "
                  f"{'yes' if result.grew else 'no'}")  # fmt: skip
        grew = lag["ours"].grew
        ok &= not grew
        print(f"  ours tps / cp tps {lag['ours'].tps / max(lag['cp'].tps, 1e-9):.2f}x; ours "
              f"backlog never grows: {verdict(not grew)}")  # fmt: skip
    if restore:
        results, replayed = restore
        print(f"\nrestore to a moment: {args.size // MiB} MiB cluster, {replayed / MiB:.0f} MiB "
              "of WAL after the base backup")  # fmt: skip
        for name, result in results.items():
            print(f"  {name:<5} {result.seconds:8.2f} s (its base backup took "
                  f"{result.base_s:.1f} s)")  # fmt: skip
        ratio = results["ours"].seconds / results["cp"].seconds
        ok &= ratio <= RESTORE_LIMIT
        print(f"  ours / pg_basebackup + cp {ratio:.2f}x, target <= {RESTORE_LIMIT}x: "
              f"{verdict(ratio <= RESTORE_LIMIT)}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=64, help="held back, then archived")
    parser.add_argument("--duration", type=int, default=300, help="seconds of pgbench per tool")
    parser.add_argument("--size", type=size, default=size("1GiB"), help="pgbench data")
    parser.add_argument("--wal", type=size, default=size("2GiB"), help="WAL to replay")
    parser.add_argument("--clients", type=int, default=4, help="pgbench clients")
    parser.add_argument("--wal-load", choices=("bulk", "tpcb"), default="bulk",
                        help="what writes the WAL archived and replayed (lag: tpcb)")  # fmt: skip
    parser.add_argument("--only", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a line for our env file, e.g. BACKUP_WAL_ASYNC=true")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if parts - set(PARTS):
        parser.error(f"--only takes {','.join(PARTS)}")
    for variable in VARIABLES:  # the env file alone says how ours runs (the environment wins)
        os.environ.pop(variable.name, None)
    # Under /tmp itself: PostgreSQL's account must reach the settings and the repository.
    work = Path(tempfile.mkdtemp(prefix="jarvis-bench-pitr-", dir="/tmp"))
    os.chmod(work, 0o755)
    print(f"work folder {work}; load average {os.getloadavg()[0]:.2f}", flush=True)
    # Roughly: the cluster and its copies, WAL in pg_wal, both archives and base backups.
    needed = 4 * args.size + 4 * args.wal + 2 * args.segments * SEGMENT + args.duration * 20 * MiB
    free = shutil.disk_usage(work).free
    if free < needed:
        print(f"  note: {free / 1024**3:.1f} GiB free under /tmp, this run may need about "
              f"{needed / 1024**3:.1f} GiB")  # fmt: skip
    bench = None
    archive = lag = restore = None
    try:
        bench = prepare(args, work)
        if "archive" in parts:
            print(f"archiving {args.segments} held-back segments:", flush=True)
            archive = archive_throughput(bench, args.segments)
        if "lag" in parts:
            print(f"archiver lag under pgbench for {args.duration} s:", flush=True)
            lag = archiver_lag(bench, args.duration)
        if "restore" in parts:
            print(f"restore to a moment after {args.wal // MiB} MiB of WAL:", flush=True)
            restore = restore_to_moment(bench, args.wal)
    finally:
        if bench is not None:
            bench.source.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if report(args, archive, lag, restore) else 1


if __name__ == "__main__":
    sys.exit(main())
