"""Benchmark the artifact pipeline against gzip, pigz and zstd on what the product stores.

    .venv/bin/python benchmarks/pipeline.py              # 1 GiB mixed file + the data sets
    .venv/bin/python benchmarks/pipeline.py --size-mib 128 --datasets mixed
    .venv/bin/python benchmarks/pipeline.py --baseline /tmp/old   # an older checkout beside

Data sets: the mixed file (text and random segments), a pgbench and a realistic
pg_dump, an RDB and our JSON export of benchmarks/redis.py's keys (made once on
throwaway servers by pipeline_datasets.py). Each contender runs as its own process on
a page-cached input; wall time, output size and peak RSS are measured per process.
Restores read our artifact back (authenticate, decrypt, inflate) against `pigz -d`
and `gzip -d` of `gzip -9`'s output. With --baseline, the same runs of our pipeline
from another checkout's engines/ ("old ...") give today's ratios beside the new.
"""

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
MAKE_TREE = ROOT.parent / "shared" / "bench" / "make_tree.py"  # ../shared/bench
MiB = 1024 * 1024
KEY_VARIABLE = "JARVIS_BENCH_KEY"  # a throwaway key, made per run
CODE_VARIABLE = "JARVIS_BENCH_CODE"  # the checkout whose engines/ a child runs
# benchmarks/redis.py must not stand in for the redis client: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, os.environ.get(CODE_VARIABLE, str(ROOT)))

DATASETS = ("mixed", "pgbench", "realistic", "rdb", "json")
TARGETS = (
    # label, numerator, denominator, measure, limit (None: no worse than the baseline's)
    ("ours-gzip size / gzip -9 size", "ours gzip-9", "gzip -9", "size", 1.02),
    ("ours-gzip time / pigz time", "ours gzip-9", "pigz -9 -p 2", "seconds", 1.0),
    ("ours restore time / pigz -d time", "ours restore", "pigz -d", "seconds", None),
    ("ours-zstd time / zstd -T2 time", "ours zstd-3", "zstd -3 -T2", "seconds", 1.3),
)
RSS_LIMIT_MB = 120


@dataclass
class Result:
    name: str
    seconds: float
    size: int
    peak_rss_mb: float
    cpu_seconds: float | None = None  # user + system, from GNU time


def ensure_input(size_mib: int) -> Path:
    path = WORK / f"mixed-{size_mib}mib.bin"
    if path.exists() and path.stat().st_size == size_mib * MiB:
        return path
    try:
        import numpy  # noqa: F401  (make_tree.py needs it)
    except ImportError:
        sys.exit("make_tree.py needs numpy: .venv/bin/pip install numpy")
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} with {MAKE_TREE} ...", flush=True)
    subprocess.run([sys.executable, MAKE_TREE, "--single", path, str(size_mib)], check=True)
    return path


def cpu_idle_fraction(seconds: float) -> float:
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle_before, total_before = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle_before) / max(1, total_after - total_before)


def wait_until_idle(limit_seconds: float) -> None:
    """On a shared machine, start a contender only once the CPUs are nearly idle."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        if cpu_idle_fraction(2.0) > 0.85:
            return
    print(f"  (CPUs still busy after {limit_seconds:.0f} s; measuring anyway)")


def warm_cache(path: Path) -> None:
    buffer = bytearray(MiB)
    with path.open("rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def measure(contender: "Contender") -> Result:
    """Run one contender; peak RSS comes from GNU time when it is installed.

    A child's ru_maxrss from wait4 also counts the launching Python's memory
    (it carries over through exec), so GNU time, a tiny forking launcher, is
    preferred.
    """
    if contender.output:
        contender.output.unlink(missing_ok=True)
    argv = contender.argv
    timer = shutil.which("time")
    report = WORK / "time.out"
    if timer:
        argv = [timer, "-f", "%M %U %S", "-o", str(report), *argv]
    env = {**os.environ, **contender.env}
    stdout = contender.output if contender.to_stdout and contender.output else Path(os.devnull)
    start = time.perf_counter()
    with open(stdout, "wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{contender.name} failed: exit status {os.waitstatus_to_exitcode(status)}")
    size = contender.output.stat().st_size if contender.output else 0
    if not timer:
        return Result(contender.name, seconds, size, usage.ru_maxrss / 1024)
    peak_kib, user, system = report.read_text().split()[-3:]
    return Result(contender.name, seconds, size, int(peak_kib) / 1024, float(user) + float(system))


def bench_keyring():
    from engines.pipeline.crypto import Keyring, MasterKey

    return Keyring(MasterKey.from_hex(os.environ[KEY_VARIABLE]))


def default_out_dir() -> Path:
    # Outputs go to memory so that disk writeback from earlier runs (and other
    # work on the machine) does not decide the race; --out-dir puts them on disk.
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else WORK


def run_ours(codec: str, source: Path, output: Path) -> None:
    """Child process: one write_artifact run."""
    from engines.pipeline.artifacts import write_artifact

    with source.open("rb") as handle:
        write_artifact(handle, output, bench_keyring(), {"source": "benchmark"}, codec=codec)


def run_restore(artifact: Path) -> None:
    """Child process: our artifact read back (authenticated, decrypted, inflated)."""
    from engines.pipeline.artifacts import open_artifact_plain

    buffer = bytearray(MiB)
    with open_artifact_plain(artifact, bench_keyring()) as plain:
        while plain.readinto(buffer):
            pass


def check_round_trip(artifact: Path, source: Path) -> None:
    from engines.pipeline.artifacts import open_artifact_plain

    digest = hashlib.sha256()
    with open_artifact_plain(artifact, bench_keyring()) as plain:
        while block := plain.read(MiB):
            digest.update(block)
    with source.open("rb") as handle:
        expected = hashlib.file_digest(handle, "sha256").hexdigest()
    if digest.hexdigest() != expected:
        sys.exit(f"{artifact.name}: round trip does not give the input back")
    print(f"{artifact.name}: round trip ok")


@dataclass(frozen=True)
class Contender:
    name: str
    argv: list[str]
    output: Path | None = None  # what it writes, kept for the restores of the round
    to_stdout: bool = False  # the output is its standard output (else it writes the file)
    env: dict[str, str] = field(default_factory=dict)


def backups(source: Path, out_dir: Path, dataset: str, baseline: Path | None) -> list[Contender]:
    child = [sys.executable, __file__, "--child"]

    def output(slug: str) -> Path:
        return out_dir / f"jarvis-bench-{slug}.out"

    found = [
        Contender("ours gzip-9", [*child, "gzip", str(source), str(output("ours"))], output("ours"))
    ]
    if baseline:
        old = output("old")
        found.append(
            Contender("old gzip-9", [*child, "gzip", str(source), str(old)], old,
                      env={CODE_VARIABLE: str(baseline)})
        )  # fmt: skip
    peers = [("gzip -9", ["gzip", "-9", "-c", str(source)]),
             ("pigz -9 -p 2", ["pigz", "-9", "-p", "2", "-c", str(source)])]  # fmt: skip
    if dataset == "mixed":  # zstd's target is recorded on the mixed file
        zstd_out = output("zstd")
        found.append(Contender("ours zstd-3", [*child, "zstd", str(source), str(zstd_out)],
                               zstd_out))  # fmt: skip
        peers.append(("zstd -3 -T2", ["zstd", "-3", "-T2", "-q", "-c", str(source)]))
    for name, argv in peers:
        if shutil.which(argv[0]) is None:
            print(f"{argv[0]} not found: install it (apt-get install -y {argv[0]}); skipped")
            continue
        slug = name.replace(" ", "")
        found.append(Contender(name, argv, output(slug), to_stdout=True))
    return found


def restores(made: dict[str, Contender], baseline: Path | None) -> list[Contender]:
    """Reading back what this round's backups wrote: ours, and gzip -9's with the tools."""
    reader = [sys.executable, __file__, "--child-read"]
    found = [Contender("ours restore", [*reader, str(made["ours gzip-9"].output)])]
    if baseline and "old gzip-9" in made:
        found.append(Contender("old restore", [*reader, str(made["old gzip-9"].output)],
                               env={CODE_VARIABLE: str(baseline)}))  # fmt: skip
    if "gzip -9" in made:
        peer_input = str(made["gzip -9"].output)
        for name, argv in (("pigz -d", ["pigz", "-d", "-c", peer_input]),
                           ("gzip -d", ["gzip", "-d", "-c", peer_input])):  # fmt: skip
            if shutil.which(argv[0]):
                found.append(Contender(name, argv))
    return found


def best_of(previous: Result | None, latest: Result) -> Result:
    """Fastest time of the rounds (the others were disturbed), highest peak RSS."""
    if previous is None:
        return latest
    fastest = min(previous, latest, key=lambda result: result.seconds)
    peak = max(previous.peak_rss_mb, latest.peak_rss_mb)
    return Result(fastest.name, fastest.seconds, fastest.size, peak, fastest.cpu_seconds)


def ratio(results: dict[str, Result], numerator: str, denominator: str, measure_name: str):
    if numerator not in results or denominator not in results:
        return None
    return getattr(results[numerator], measure_name) / getattr(results[denominator], measure_name)


def report(dataset: str, results: dict[str, Result], input_size: int) -> bool:
    print(f"\n{dataset}: {input_size / MiB:.1f} MiB")
    print(
        f"{'contender':<14} {'wall s':>8} {'cpu s':>7} {'output MiB':>11} {'ratio':>6} "
        f"{'peak RSS MB':>12}"
    )
    for result in results.values():
        cpu = f"{result.cpu_seconds:.2f}" if result.cpu_seconds is not None else "-"
        size = "          -      -"
        if result.size:
            size = f"{result.size / MiB:>11.1f} {result.size / input_size:>6.3f}"
        print(
            f"{result.name:<14} {result.seconds:>8.2f} {cpu:>7} {size} {result.peak_rss_mb:>12.1f}"
        )
    print()
    ok = True
    for label, ours, peer, measure_name, limit in TARGETS:
        value = ratio(results, ours, peer, measure_name)
        if value is None:
            continue
        old = ratio(results, ours.replace("ours", "old"), peer, measure_name)
        today = f"  old {old:6.3f}x" if old is not None else ""
        if limit is None and old is None:
            print(f"{label:<34} {value:6.3f}x  (no baseline to compare)")
            continue
        bound = limit if limit is not None else old
        met = value <= bound
        ok &= met
        target = f"target <= {limit}x" if limit is not None else "target <= old"
        print(f"{label:<34} {value:6.3f}x{today}  {target}  {'ok' if met else 'MISSED'}")
    for new, old in (("ours gzip-9", "old gzip-9"), ("ours restore", "old restore")):
        # CPU seconds shift less than wall time when other work shares the machine.
        timed = [results[name].cpu_seconds for name in (new, old) if name in results]
        if len(timed) == 2 and None not in timed:
            print(f"{new + ' cpu / ' + old + ' cpu':<34} {timed[0] / timed[1]:6.3f}x  (no target)")
    for name in ("ours gzip-9", "ours zstd-3", "ours restore"):
        if name in results:
            rss = results[name].peak_rss_mb
            ok &= rss < RSS_LIMIT_MB
            verdict = "ok" if rss < RSS_LIMIT_MB else "MISSED"
            print(f"{name + ' peak RSS':<34} {rss:6.1f} MB target < {RSS_LIMIT_MB} MB  {verdict}")
    return ok


def inputs(args: argparse.Namespace) -> dict[str, Path]:
    chosen = args.datasets.split(",")
    unknown = set(chosen) - set(DATASETS)
    if unknown:
        sys.exit(f"unknown data sets {sorted(unknown)}; choose from {', '.join(DATASETS)}")
    found = {}
    if "mixed" in chosen:
        found["mixed"] = ensure_input(args.size_mib)
    if set(chosen) - {"mixed"}:
        from benchmarks.pipeline_datasets import ensure_datasets

        pgbench, realistic, rdb, json = ensure_datasets(args.pg_size_mib, args.redis_keys)
        made = {"pgbench": pgbench, "realistic": realistic, "rdb": rdb, "json": json}
        found |= {name: path for name, path in made.items() if name in chosen}
    return found


def bench_round(
    source: Path, dataset: str, round_number: int, args: argparse.Namespace, out_dir: Path
) -> list[Result]:
    """Every backup of `source`, then every restore of what they wrote; outputs removed."""
    made = {c.name: c for c in backups(source, out_dir, dataset, args.baseline)}
    results = []
    try:
        for stage in ("backup", "restore"):
            chosen = list(made.values()) if stage == "backup" else restores(made, args.baseline)
            if round_number % 2:  # old and new, ours and the peers, each go first in turn
                chosen.reverse()
            for contender in chosen:
                if args.only not in contender.name:
                    continue
                if args.wait_idle:
                    wait_until_idle(args.wait_idle)
                print(f"round {round_number}: {dataset}: {contender.name} ...", flush=True)
                results.append(measure(contender))
                if contender.name == "ours gzip-9" and args.check and round_number == 1:
                    check_round_trip(contender.output, source)
    finally:
        for contender in made.values():
            if contender.output:
                contender.output.unlink(missing_ok=True)
                contender.output.with_name(contender.output.name + ".metadata.json").unlink(
                    missing_ok=True
                )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the mixed file's size")
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help=f"comma-separated, of {','.join(DATASETS)}"
    )
    parser.add_argument("--pg-size-mib", type=int, default=128, help="each database's size")
    parser.add_argument("--redis-keys", type=int, default=200_000)
    parser.add_argument("--baseline", type=Path, help="a checkout whose engines/ run as 'old'")
    parser.add_argument("--check", action="store_true", help="also round-trip our artifacts")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; each contender keeps its fastest time"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each run, wait up to this long for idle CPUs (shared machines)",
    )
    parser.add_argument("--only", default="", help="run only contenders whose name has this")
    parser.add_argument("--out-dir", type=Path, help="where outputs go (default: /dev/shm)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # CODEC INPUT OUTPUT
    parser.add_argument("--child-read", type=Path, help=argparse.SUPPRESS)  # ARTIFACT
    args = parser.parse_args()
    if args.child:
        codec, source, output = args.child
        run_ours(codec, Path(source), Path(output))
        return 0
    if args.child_read:
        run_restore(args.child_read)
        return 0
    if args.baseline and not (args.baseline / "engines" / "pipeline").is_dir():
        sys.exit(f"{args.baseline}: not a checkout with engines/pipeline/")
    out_dir = args.out_dir or default_out_dir()
    os.environ.setdefault(KEY_VARIABLE, secrets.token_hex(32))
    sources = inputs(args)
    if shutil.which("time") is None:
        print("GNU time not found (apt-get install -y time): RSS figures include the launcher")
    print(f"outputs in {out_dir}; load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, dict[str, Result]] = {name: {} for name in sources}
    for round_number in range(1, args.repeat + 1):
        for dataset, source in sources.items():
            warm_cache(source)
            for result in bench_round(source, dataset, round_number, args, out_dir):
                known = results[dataset]
                known[result.name] = best_of(known.get(result.name), result)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ok = True
    for dataset, source in sources.items():
        ok &= report(dataset, results[dataset], source.stat().st_size)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
