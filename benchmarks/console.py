"""Benchmark the console with 10,000 backup sets: first paint and filter latency.

    .venv/bin/python benchmarks/console.py                 # 10,000 sets, 3 rounds
    .venv/bin/python benchmarks/console.py --sets 2000     # quick iteration

Contenders, each its own process on the same seeded catalog:

- console: `jarvis_tui.app.make_app` run headless at 120x40. First paint is the
  time from launching the process to the dashboard drawn with its facts (the
  newest good backup per source among the 10,000 sets, schedules, alerts); then
  the script presses 2, as an operator would, and times the catalog pane drawn
  with its first page of sets. Filter latency is from a changed filter text to
  the table redrawn with the matching sets, over queries from very selective to
  everything, 150 ms apart like a quick typist's keystrokes.
- datatable: the same sets in a plain Textual `DataTable`, filtered by clearing
  it and adding the matching rows: what a console that is not virtual pays.
- cli: `jarvis-tui list` printing every set (to /dev/null), for scale.

Each figure is the median over `--rounds` processes; peak RSS is each process's
own `ru_maxrss`. Targets: first paint under 1.0 s, filter under 100 ms (p95).
The exit status is non-zero when a target is missed.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, and its redis.py would shadow redis.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

WORK = ROOT / "benchmarks" / ".work"
KEY = "0123456789abcdef" * 4
FIRST_PAINT_TARGET_S = 1.0
FILTER_TARGET_S = 0.100
# From one set to all of them: an id, a day, a source, a tier, a status, nothing.
QUERIES = ("redis_2024-03-1", "2024-02-0", "postgres", "weekly", "files daily", "complete", "")
SIZE = (120, 40)
# Between two filters, as between a quick typist's keystrokes: what one keystroke set off
# (details of the row under the cursor, storage places of the rows in view) may finish.
TYPING_PAUSE_S = 0.15


# -- the seeded catalog --------------------------------------------------------------------


def seed(root: Path, sets: int) -> Path:
    from engines.catalog import Catalog

    env_file = root / "jarvis.env"
    (root / "repo").mkdir(mode=0o700)
    catalog_env = (
        f"BACKUP_DIR={root / 'repo'}\nBACKUP_CATALOG_PATH={root / 'catalog.sqlite3'}\n"
        f"BACKUP_LOG_DIR={root / 'logs'}\nBACKUP_ENCRYPTION_KEY={KEY}\n"
    )
    start = datetime(2024, 1, 1, tzinfo=UTC)
    kinds = ("postgres", "redis", "files", "secrets")
    tiers = ("daily", "daily", "daily", "daily", "daily", "daily", "weekly", "monthly")
    with Catalog.open(root / "catalog.sqlite3") as catalog:
        for number in range(sets):
            kind = kinds[number % len(kinds)]
            created = start + timedelta(minutes=47 * number)
            backup_set = catalog.create_backup_set(
                kind, tier=tiers[number % len(tiers)], created_at=created
            )
            artifact = catalog.add_artifact(
                backup_set.id, kind, "full", f"{kind}/{backup_set.id}_data.gz.enc"
            )
            catalog.complete_artifact(
                artifact.id,
                checksum="ab" * 32,
                stored_size=1_000_000 + number,
                plain_size=4_000_000,
                key_id="k1",
                codec="gzip",
                metadata={"kind": kind},
            )
            catalog.set_copy_state(artifact.id, "local", "stored")
            catalog.finish_backup_set(backup_set.id, "complete" if number % 50 else "failed")
    env_file.write_text(catalog_env)  # last: its presence says the catalog is complete
    return env_file


# -- children: each measures itself and prints one JSON line -------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the console never showed what the benchmark waited for")
        await pilot.pause(0.005)


async def console_child(env_file: Path) -> dict:
    from jarvis_tui.app import make_app

    imported_at = time.time()
    from jarvis_tui.screens.dashboard import DashboardScreen

    app = make_app(env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await wait_for(pilot, lambda: dashboard.facts is not None)
        await pilot.pause()  # one refresh: the dashboard is on the screen with its facts
        dashboard_at = time.time()
        await pilot.press("2")
        from jarvis_tui.screens.catalog import CatalogScreen
        from jarvis_tui.widgets.backup_table import BackupTable

        def table() -> BackupTable | None:
            screen = app.screen
            return screen.query_one(BackupTable) if isinstance(screen, CatalogScreen) else None

        await wait_for(pilot, lambda: table() is not None and len(table().rows) > 0)
        await pilot.pause()  # one refresh: the first page is on the screen
        painted_at = time.time()
        screen = app.screen
        index = screen.index
        latencies = {}
        for query in QUERIES * 3:
            await pilot.pause(TYPING_PAUSE_S)
            expected = len(index.filter(query))
            started = time.perf_counter()
            screen.query_one("#catalog-filter").value = query
            await wait_for(
                pilot,
                lambda q=query, n=expected: (
                    screen.query_text == q
                    and len(table().rows) == n
                    and table().rows is not None
                    and screen.query_one("#catalog-status").render().plain.startswith(f"{n:,} of")
                ),
            )
            await pilot.pause()
            latencies.setdefault(query, []).append(time.perf_counter() - started)
    return {
        "imported_at": imported_at,
        "dashboard_at": dashboard_at,
        "painted_at": painted_at,
        "filters": latencies,
        "sets": len(index),
    }


async def datatable_child(env_file: Path) -> dict:
    from textual.app import App
    from textual.widgets import DataTable

    from engines.catalog import Catalog
    from engines.config import load_settings
    from jarvis_tui.catalog_view import CatalogIndex
    from jarvis_tui.formatting import human_size, local_moment

    settings = load_settings(env_file=env_file, strict=False)
    with Catalog.open(settings.catalog_path) as catalog:
        index = CatalogIndex(catalog.list_backup_sets())

    def rows(sets) -> list[tuple]:
        return [
            (
                s.id,
                s.kind,
                s.tier or "-",
                local_moment(s.created_at),
                human_size(s.stored_size),
                s.status,
            )
            for s in sets
        ]

    class Plain(App):
        def compose(self):
            table = DataTable()
            table.add_columns("Backup", "Source", "Tier", "Created", "Size", "Status")
            table.add_rows(rows(index.sets))
            yield table

    app = Plain()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        painted_at = time.time()
        table = app.query_one(DataTable)
        latencies = {}
        for query in QUERIES:
            started = time.perf_counter()
            table.clear()
            table.add_rows(rows(index.filter(query)))
            await pilot.pause()
            latencies.setdefault(query, []).append(time.perf_counter() - started)
    return {"painted_at": painted_at, "filters": latencies, "sets": len(index)}


def run_child(kind: str, env_file: Path) -> None:
    child = {"console": console_child, "datatable": datatable_child}[kind]
    result = asyncio.run(child(env_file))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


# -- the parent ------------------------------------------------------------------------------


def launch(kind: str, env_file: Path) -> dict:
    started = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["first_paint_s"] = result.get("dashboard_at", result["painted_at"]) - started
    result["catalog_paint_s"] = result["painted_at"] - started
    if "imported_at" in result:
        result["import_s"] = result["imported_at"] - started
    return result


def cli_list(env_file: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            sys.executable,
            "-m",
            "jarvis_tui.cli",
            "--env-file",
            str(env_file),
            "list",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - started
    rss_kb = int(done.stderr.strip().splitlines()[-1]) if done.returncode == 0 else 0
    return {"seconds": seconds, "peak_rss_mb": rss_kb / 1024}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarise(results: list[dict]) -> dict:
    filters = [t for r in results for times in r["filters"].values() for t in times]
    return {
        "import_s": statistics.median(r.get("import_s", float("nan")) for r in results),
        "first_paint_s": statistics.median(r["first_paint_s"] for r in results),
        "catalog_paint_s": statistics.median(r["catalog_paint_s"] for r in results),
        "filter_median_s": statistics.median(filters),
        "filter_p95_s": percentile(filters, 0.95),
        "filter_max_s": max(filters),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=("console", "datatable"), help=argparse.SUPPRESS)
    parser.add_argument("--env-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.env_file)
        return 0

    root = WORK / f"console-{args.sets}"
    env_file = root / "jarvis.env"
    if not env_file.exists():  # seeding 10,000 sets through the catalog takes a minute
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        began = time.perf_counter()
        seed(root, args.sets)
        print(f"seeded {args.sets:,} sets in {time.perf_counter() - began:.1f} s ({root})")
    load = os.getloadavg()[0]
    ours = summarise([launch("console", env_file) for _ in range(args.rounds)])
    plain = summarise([launch("datatable", env_file) for _ in range(args.rounds)])
    listing = min((cli_list(env_file) for _ in range(args.rounds)), key=lambda r: r["seconds"])

    print(
        f"\n{args.sets:,} backup sets, {args.rounds} rounds (medians), terminal "
        f"{SIZE[0]}x{SIZE[1]}, load average {load:.1f} on {os.cpu_count()} cores at the start"
    )
    print(f"{'':28}{'console':>12}{'DataTable':>12}{'ratio':>8}")
    for label, key in (
        ("imports done (s)", "import_s"),
        ("first paint (s)", "first_paint_s"),
        ("10,000 sets on screen (s)", "catalog_paint_s"),
        ("filter, median (ms)", "filter_median_s"),
        ("filter, p95 (ms)", "filter_p95_s"),
        ("filter, worst (ms)", "filter_max_s"),
        ("peak RSS (MiB)", "peak_rss_mb"),
    ):
        scale = 1000 if key.startswith("filter") else 1
        mine, theirs = ours[key] * scale, plain[key] * scale
        ratio = mine / theirs if theirs else float("nan")
        print(f"{label:28}{mine:12.1f}{theirs:12.1f}{ratio:8.2f}")
    print(
        f"{'jarvis-tui list (s)':28}{listing['seconds']:12.2f}   peak RSS "
        f"{listing['peak_rss_mb']:.0f} MiB"
    )
    missed = []
    if ours["first_paint_s"] >= FIRST_PAINT_TARGET_S:
        missed.append(f"first paint {ours['first_paint_s']:.2f} s >= {FIRST_PAINT_TARGET_S} s")
    if ours["filter_p95_s"] >= FILTER_TARGET_S:
        missed.append(f"filter p95 {ours['filter_p95_s'] * 1000:.0f} ms >= 100 ms")
    print("\ntargets: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
