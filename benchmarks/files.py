"""Benchmark the files store against restic on one generated tree, side by side.

    .venv/bin/python benchmarks/files.py                          # 30,000 files, 1.5 GiB
    .venv/bin/python benchmarks/files.py --files 3000 --mib 150   # quick iteration

Steps, each run by every contender on the same page-cached tree: first backup,
unchanged second backup (ours: --incremental), backup after changing 1% of the
files (make_tree.py --modify), full restore, read-all-data check, repository
size. Contenders: restic (Debian package), ours with BACKUP_COMPRESSION=gzip
(level 9, the default) and =zstd. Wall time, CPU time (user + system) and peak
RSS (GNU time) per step. Restore and check, which change nothing, run
`--repeat` times in turn and keep each contender's fastest: on a machine shared
with other work, one slow run says more about the neighbours than the tool.
"""

import argparse
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
STEPS = ("first backup", "unchanged", "1% changed", "restore", "check --read-data")
RSS_LIMIT_MB = 250
# label, our contender, step, limit (ratio to restic)
TARGETS = (
    ("unchanged backup", "ours-gzip", "unchanged", 0.8),
    ("1%-changed backup", "ours-gzip", "1% changed", 1.0),
    ("first backup, gzip 9", "ours-gzip", "first backup", 3.0),
    ("first backup, zstd", "ours-zstd", "first backup", 1.2),
    ("restore", "ours-zstd", "restore", 1.5),
    ("verify --read-data", "ours-zstd", "check --read-data", 1.5),
)
SIZE_TARGET = 1.1


REPEATABLE = ("restore", "check --read-data")


@dataclass
class Step:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


@dataclass
class Contender:
    name: str
    repo: Path
    steps: dict[str, Step] = field(default_factory=dict)

    def commands(self, tree: Path, target: Path) -> dict[str, list[str]]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        shutil.rmtree(self.repo, ignore_errors=True)

    def repository_size(self) -> int:
        return sum(p.stat().st_size for p in self.repo.rglob("*") if p.is_file())


class Restic(Contender):
    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "RESTIC_REPOSITORY": str(self.repo),
            "RESTIC_PASSWORD": "benchmark",
            "RESTIC_CACHE_DIR": str(WORK / "restic-cache"),
        }

    def prepare(self) -> None:
        super().prepare()
        shutil.rmtree(WORK / "restic-cache", ignore_errors=True)
        subprocess.run(
            ["restic", "init", "-q"], env=self.environment(), check=True, stdout=subprocess.DEVNULL
        )

    def commands(self, tree: Path, target: Path) -> dict[str, list[str]]:
        backup = ["restic", "backup", "-q", str(tree)]
        return {
            "first backup": backup,
            "unchanged": backup,
            "1% changed": backup,
            "restore": ["restic", "restore", "-q", "latest", "--target", str(target)],
            "check --read-data": ["restic", "check", "-q", "--read-data"],
        }


class Ours(Contender):
    def __init__(self, name: str, repo: Path, codec: str, tree: Path):
        super().__init__(name, repo)
        self.codec = codec
        self.tree = tree
        self.env_file = WORK / f"{name}.env"

    def prepare(self) -> None:
        super().prepare()
        state = WORK / f"{self.name}-state"
        shutil.rmtree(state, ignore_errors=True)
        self.env_file.write_text(
            f"BACKUP_DIR={self.repo}\nBACKUP_CATALOG_PATH={state}/catalog.sqlite3\n"
            f"BACKUP_LOG_DIR={state}/log\nBACKUP_ENCRYPTION_KEY={secrets.token_hex(32)}\n"
            f"BACKUP_COMPRESSION={self.codec}\n"
        )

    def environment(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKUP_")}
        return {**clean, "BACKUP_FILE_PATHS": str(self.tree)}

    def commands(self, tree: Path, target: Path) -> dict[str, list[str]]:
        cli = [str(ROOT / ".venv/bin/jarvis-tui"), "--env-file", str(self.env_file)]
        return {
            "first backup": [*cli, "backup", "files"],
            "unchanged": [*cli, "backup", "files", "--incremental"],
            "1% changed": [*cli, "backup", "files", "--incremental"],
            "restore": [*cli, "restore", "files", "latest", "--target-dir", str(target)],
            "check --read-data": [*cli, "verify", "latest", "--read-data"],
        }

    def repository_size(self) -> int:
        return sum(p.stat().st_size for p in (self.repo / "files").rglob("*") if p.is_file())


def run_step(contender: Contender, step: str, argv: list[str]) -> Step:
    os.sync()  # the previous step's writes are not flushed on this one's time
    report = WORK / "time.out"
    timed = ["/usr/bin/time", "-f", "%U %S %M", "-o", str(report), *argv]
    start = time.perf_counter()
    result = subprocess.run(timed, env=contender.environment(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{contender.name} {step} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    user, system, peak_kib = report.read_text().split()[-3:]
    return Step(seconds, float(user) + float(system), int(peak_kib) / 1024)


def ensure_tree(files: int, mib: int) -> Path:
    """A pristine generated tree (cached) copied afresh, because --modify changes it."""
    pristine = WORK / f"tree-{files}-{mib}"
    if not pristine.is_dir():
        print(f"generating {files} files / {mib} MiB with {MAKE_TREE} ...", flush=True)
        partial = pristine.with_name(pristine.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, MAKE_TREE, partial, str(files), str(mib)], check=True)
        partial.rename(pristine)
    tree = WORK / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["cp", "-a", str(pristine), str(tree)], check=True)
    for path in tree.rglob("*"):  # page-cache the copy so no contender pays for a cold read
        if path.is_file():
            path.read_bytes()
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=30_000)
    parser.add_argument("--mib", type=int, default=1536)
    parser.add_argument("--repeat", type=int, default=2, help="rounds of restore and check")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="only restore and check, from the repositories an earlier run left",
    )
    args = parser.parse_args()
    if shutil.which("restic") is None:
        sys.exit("restic not found: apt-get install -y restic")
    WORK.mkdir(parents=True, exist_ok=True)
    tree = WORK / "tree" if args.reuse else ensure_tree(args.files, args.mib)
    contenders: list[Contender] = [
        Restic("restic", WORK / "repo-restic"),
        Ours("ours-gzip", WORK / "repo-ours-gzip", "gzip", tree),
        Ours("ours-zstd", WORK / "repo-ours-zstd", "zstd", tree),
    ]
    print(f"tree {tree}: {args.files} files, {args.mib} MiB; load average {os.getloadavg()}")
    if not args.reuse:
        for contender in contenders:
            contender.prepare()
    for step in REPEATABLE if args.reuse else STEPS:
        if step == "1% changed":
            subprocess.run([sys.executable, MAKE_TREE, "--modify", tree, "1"], check=True)
        for _ in range(args.repeat if step in REPEATABLE else 1):
            for contender in contenders:
                target = WORK / f"restore-{contender.name}"
                shutil.rmtree(target, ignore_errors=True)
                argv = contender.commands(tree, target)[step]
                result = run_step(contender, step, argv)
                shutil.rmtree(target, ignore_errors=True)
                os.sync()
                best = contender.steps.get(step)
                if best is None or result.seconds < best.seconds:
                    contender.steps[step] = result
                print(
                    f"  {contender.name:10} {step:18} {result.seconds:7.2f} s "
                    f"(cpu {result.cpu_seconds:.2f} s)",
                    flush=True,
                )
    return report(contenders)


def report(contenders: list[Contender]) -> int:
    by_name = {c.name: c for c in contenders}
    print(f"\nload average after: {os.getloadavg()}")
    print("wall seconds / cpu seconds (user + system) / peak RSS")
    print(f"{'step':<20}" + "".join(f"{c.name:>30}" for c in contenders))
    for step in (s for s in STEPS if s in contenders[0].steps):
        cells = "".join(
            f"{c.steps[step].seconds:>9.2f} s {c.steps[step].cpu_seconds:>7.2f} s "
            f"{c.steps[step].peak_rss_mb:>5.0f} MB"
            for c in contenders
        )
        print(f"{step:<20}{cells}")
    sizes = {c.name: c.repository_size() for c in contenders}
    print(
        f"{'repository size':<20}"
        + "".join(f"{sizes[c.name] / MiB:>25.1f} MiB" for c in contenders)
    )
    print()
    ok = True
    restic = by_name["restic"]
    for label, ours, step, limit in TARGETS:
        if step not in restic.steps:
            continue
        ratio = by_name[ours].steps[step].seconds / restic.steps[step].seconds
        cpu = by_name[ours].steps[step].cpu_seconds / restic.steps[step].cpu_seconds
        ok &= ratio <= limit
        verdict = "ok" if ratio <= limit else "MISSED"
        print(
            f"{label} ({ours})".ljust(40)
            + f"{ratio:6.2f}x restic  <= {limit}x  {verdict:6} (cpu {cpu:.2f}x)"
        )
    for ours in ("ours-gzip", "ours-zstd"):
        ratio = sizes[ours] / sizes["restic"]
        ok &= ratio <= SIZE_TARGET
        verdict = "ok" if ratio <= SIZE_TARGET else "MISSED"
        print(f"repository size ({ours})".ljust(40) + f"{ratio:6.2f}x restic  <= 1.1x  {verdict}")
        peak = max(s.peak_rss_mb for s in by_name[ours].steps.values())
        ok &= peak < RSS_LIMIT_MB
        verdict = "ok" if peak < RSS_LIMIT_MB else "MISSED"
        print(
            f"peak RSS ({ours})".ljust(40) + f"{peak:6.0f} MB      < {RSS_LIMIT_MB} MB  {verdict}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
