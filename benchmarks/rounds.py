"""Contenders run side by side: each run under GNU time (a tiny launcher, so the peak
RSS is the contender's own), in rounds after an uncounted warm-up, the order rotating
from round to round; the fastest run of each counts and the median is printed.

The very first run of a series tends to find the machine in a state no later run does
(memory never handed out before, a server just loaded), hence the warm-up; a server
drifts by seconds within a series, hence the rotation.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    name: str
    seconds: float
    size: int
    peak_rss_mb: float


@dataclass
class Contender:
    name: str
    argv: list[str]
    env: dict[str, str]
    stdin: Path | None = None
    before: Callable[[], None] = lambda: None  # before each run, untimed
    size: Callable[[bytes], int] = lambda stdout: 0  # what it wrote, given its stdout


def measure(contender: Contender, label: str, work: Path) -> Result:
    """One run of `contender` (its name and `label` are printed), size included."""
    argv = contender.argv
    timer = shutil.which("time")
    report = work / "time.out"
    if timer:
        argv = [timer, "-f", "%M", "-o", str(report), *argv]
    print(f"  running {contender.name} ({label}) ...", flush=True)
    start = time.perf_counter()
    with open(contender.stdin or os.devnull, "rb") as source:
        process = subprocess.Popen(argv, env=contender.env, stdin=source, stdout=subprocess.PIPE)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{contender.name} failed with exit status {process.returncode}")
    peak_kib = int(report.read_text().split()[-1]) if timer else usage.ru_maxrss
    return Result(contender.name, seconds, contender.size(output), peak_kib / 1024)


def in_rounds(contenders: list[Contender], rounds: int, work: Path) -> dict[str, Result]:
    best: dict[str, Result] = {}
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    for round_number in range(-1, rounds):
        shift = round_number % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            contender.before()
            label = "warm-up" if round_number < 0 else str(round_number + 1)
            result = measure(contender, label, work)
            if round_number < 0:
                continue
            times[contender.name].append(result.seconds)
            if contender.name not in best or result.seconds < best[contender.name].seconds:
                best[contender.name] = result
    for name, seconds in times.items():
        print(f"  {name}: min {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s, "
              f"rounds {', '.join(f'{s:.2f}' for s in seconds)}")  # fmt: skip
    return best
