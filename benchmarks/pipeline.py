"""Benchmark the artifact pipeline against gzip, pigz and zstd on one mixed file.

    .venv/bin/python benchmarks/pipeline.py              # 1 GiB, as recorded in README
    .venv/bin/python benchmarks/pipeline.py --size-mib 128

Each contender runs as its own process on a page-cached input; wall time,
output size and peak RSS (from wait4) are measured per process.
"""

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
MAKE_TREE = ROOT.parent / "shared" / "bench" / "make_tree.py"  # ../shared/bench
MiB = 1024 * 1024
KEY_VARIABLE = "JARVIS_BENCH_KEY"  # a throwaway key, made per run
sys.path.insert(0, str(ROOT))

TARGETS = (
    # label, numerator, denominator, measure, limit
    ("ours-gzip time / pigz time", "ours gzip-9", "pigz -9 -p 2", "seconds", 1.0),
    ("ours-gzip size / gzip -9 size", "ours gzip-9", "gzip -9", "size", 1.02),
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


def measure(contender: "Contender", output: Path) -> Result:
    """Run one contender; peak RSS comes from GNU time when it is installed.

    A child's ru_maxrss from wait4 also counts the launching Python's memory
    (it carries over through exec), so GNU time, a tiny forking launcher, is
    preferred.
    """
    output.unlink(missing_ok=True)
    argv = contender.command(output)
    timer = shutil.which("time")
    report = WORK / "time.out"
    if timer:
        argv = [timer, "-f", "%M %U %S", "-o", str(report), *argv]
    start = time.perf_counter()
    with open(os.devnull if contender.codec else output, "wb") as sink:
        process = subprocess.Popen(argv, stdout=sink)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{contender.name} failed: exit status {os.waitstatus_to_exitcode(status)}")
    size = output.stat().st_size
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
    codec: str | None = None  # set for our pipeline, which writes the output itself

    def command(self, output: Path) -> list[str]:
        return [*self.argv, str(output)] if self.codec else self.argv


def contenders(source: Path) -> list[Contender]:
    ours = [sys.executable, __file__, "--child"]
    found = []
    for contender in (
        Contender("ours gzip-9", [*ours, "gzip", str(source)], "gzip"),
        Contender("ours zstd-3", [*ours, "zstd", str(source)], "zstd"),
        Contender("gzip -9", ["gzip", "-9", "-c", str(source)]),
        Contender("pigz -9 -p 2", ["pigz", "-9", "-p", "2", "-c", str(source)]),
        Contender("zstd -3 -T2", ["zstd", "-3", "-T2", "-q", "-c", str(source)]),
    ):
        tool = contender.argv[0]
        if shutil.which(tool) is None:
            print(f"{tool} not found: install it (apt-get install -y {tool}); skipped")
            continue
        found.append(contender)
    return found


def best_of(previous: Result | None, latest: Result) -> Result:
    """Fastest time of the rounds (the others were disturbed), highest peak RSS."""
    if previous is None:
        return latest
    fastest = min(previous, latest, key=lambda result: result.seconds)
    peak = max(previous.peak_rss_mb, latest.peak_rss_mb)
    return Result(fastest.name, fastest.seconds, fastest.size, peak, fastest.cpu_seconds)


def report(results: dict[str, Result], input_size: int) -> bool:
    print(
        f"\n{'contender':<14} {'wall s':>8} {'cpu s':>7} {'output MiB':>11} {'ratio':>6} "
        f"{'peak RSS MB':>12}"
    )
    for result in results.values():
        cpu = f"{result.cpu_seconds:.2f}" if result.cpu_seconds is not None else "-"
        print(
            f"{result.name:<14} {result.seconds:>8.2f} {cpu:>7} {result.size / MiB:>11.1f} "
            f"{result.size / input_size:>6.3f} {result.peak_rss_mb:>12.1f}"
        )
    print()
    ok = True
    for label, ours, peer, measure_name, limit in TARGETS:
        if ours not in results or peer not in results:
            print(f"{label:<34} n/a (a contender is missing)")
            continue
        value = getattr(results[ours], measure_name) / getattr(results[peer], measure_name)
        ok &= value <= limit
        print(
            f"{label:<34} {value:6.3f}x  target <= {limit}x  {'ok' if value <= limit else 'MISSED'}"
        )
    for name in ("ours gzip-9", "ours zstd-3"):
        if name in results:
            rss = results[name].peak_rss_mb
            ok &= rss < RSS_LIMIT_MB
            verdict = "ok" if rss < RSS_LIMIT_MB else "MISSED"
            print(f"{name + ' peak RSS':<34} {rss:6.1f} MB target < {RSS_LIMIT_MB} MB  {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
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
    args = parser.parse_args()
    if args.child:
        codec, source, output = args.child
        run_ours(codec, Path(source), Path(output))
        return 0
    out_dir = args.out_dir or default_out_dir()
    os.environ.setdefault(KEY_VARIABLE, secrets.token_hex(32))
    source = ensure_input(args.size_mib)
    if shutil.which("time") is None:
        print("GNU time not found (apt-get install -y time): RSS figures include the launcher")
    warm_cache(source)
    print(f"outputs in {out_dir}; load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, Result] = {}
    chosen = [c for c in contenders(source) if args.only in c.name]
    for round_number in range(1, args.repeat + 1):
        for contender in chosen:
            output = out_dir / f"jarvis-bench-{contender.codec or 'peer'}.out"
            if args.wait_idle:
                wait_until_idle(args.wait_idle)
            print(f"round {round_number}: {contender.name} ...", flush=True)
            result = measure(contender, output)
            if contender.codec and args.check and round_number == 1:
                check_round_trip(output, source)
            output.unlink()
            output.with_name(output.name + ".metadata.json").unlink(missing_ok=True)
            results[contender.name] = best_of(results.get(contender.name), result)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if report(results, source.stat().st_size) else 1


if __name__ == "__main__":
    sys.exit(main())
