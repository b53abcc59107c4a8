"""Concurrent clients for benchmarks/api.py: each a thread with its own keep-alive
connection, all started together after a warm-up, every request timed; and the data
peer, the same page read by the `sqlite3` module in as many threads.

httpx clients in threads of one process: the client side's own cost (and the GIL) is
in every figure, the floor (`GET /api/live`, nothing behind it) shows how much.
"""

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Latencies:
    name: str
    seconds: list[float]  # one per timed request
    wall_s: float  # from the common start to the last answer

    def quantile(self, fraction: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return self.quantile(0.95)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def rate(self) -> float:
        return len(self.seconds) / self.wall_s


Worker = Callable[[], float | None]


def _in_threads(
    name: str, clients: int, requests: int, warmup: int, make: Callable[[], Worker]
) -> Latencies:
    """`clients` threads; each makes its worker, runs it `warmup` times, waits for the
    others, then `requests` timed times. A worker raises on a wrong answer, and may
    return when its timed part began (after untimed preparation)."""
    start = threading.Barrier(clients + 1)
    timings: list[list[float]] = [[] for _ in range(clients)]
    failures: list[BaseException] = []

    def client(number: int) -> None:
        try:
            once = make()
            for _ in range(warmup):
                once()
        except BaseException as error:  # reported below; the barrier must still be met
            failures.append(error)
            start.wait()
            return
        start.wait()
        try:
            for _ in range(requests):
                began = time.perf_counter()
                timed_from = once()
                timings[number].append(time.perf_counter() - (timed_from or began))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{name}: {failures[0]!r}")
    return Latencies(name, [t for per_client in timings for t in per_client], wall)


def http_latencies(
    name: str,
    base_url: str,
    path: str,
    token: str,
    *,
    clients: int,
    requests: int,
    warmup: int,
    expect_items: bool = False,
    before: Callable[[], None] | None = None,
) -> Latencies:
    """`GET path` from `clients` keep-alive connections; each answer must be 200 (and,
    with `expect_items`, a non-empty JSON list). `before` runs before each request,
    untimed."""

    def make() -> Worker:
        client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

        def once() -> float:
            if before is not None:
                before()
            began = time.perf_counter()
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
            if expect_items and not response.json():
                raise RuntimeError(f"GET {path}: an empty page")
            return began

        return once

    return _in_threads(name, clients, requests, warmup, make)


# The page `GET /api/backups` answers, in the fewest plain queries: how many sets match,
# the newest `limit` with their artifact count and bytes, their artifacts, their copies.
PAGE_COUNT = "SELECT COUNT(*) FROM backup_sets AS s WHERE {where}"
PAGE_SETS = """
SELECT s.*,
  (SELECT COUNT(*) FROM artifacts AS a WHERE a.set_id = s.id) AS artifact_count,
  (SELECT COALESCE(SUM(COALESCE(a.stored_size, 0) + CASE WHEN a.source = 'files'
       THEN COALESCE(json_extract(a.metadata_json, '$.snapshot.stored_bytes'), 0)
       ELSE 0 END), 0) FROM artifacts AS a WHERE a.set_id = s.id) AS stored_size
FROM backup_sets AS s WHERE {where} ORDER BY s.created_at DESC, s.rowid DESC LIMIT ?
"""
SOURCE_FILTER = (
    "(s.kind = ? OR EXISTS (SELECT 1 FROM artifacts AS a WHERE a.set_id = s.id AND a.source = ?))"
)


def sqlite_page(catalog_path: str, source: str | None, limit: int) -> Callable[[], Worker]:
    """A worker maker: its own read-only connection, then the page's four queries."""
    where, params = ("1", []) if source is None else (SOURCE_FILTER, [source, source])

    def make() -> Worker:
        conn = sqlite3.connect(f"file:{catalog_path}?mode=ro", uri=True, check_same_thread=False)

        def once() -> None:
            conn.execute(PAGE_COUNT.format(where=where), params).fetchone()
            sets = conn.execute(PAGE_SETS.format(where=where), [*params, limit]).fetchall()
            ids = [row[0] for row in sets]
            if not ids:
                raise RuntimeError("the sqlite3 page is empty")
            marks = ", ".join("?" * len(ids))
            artifacts = conn.execute(
                f"SELECT * FROM artifacts WHERE set_id IN ({marks}) ORDER BY id", ids
            ).fetchall()
            artifact_ids = [row[0] for row in artifacts]
            conn.execute(
                f"SELECT * FROM copies WHERE artifact_id IN ({', '.join('?' * len(artifact_ids))})",
                artifact_ids,
            ).fetchall()

        return once

    return make


def sqlite_latencies(
    name: str,
    catalog_path: str,
    source: str | None,
    limit: int,
    *,
    clients: int,
    requests: int,
    warmup: int,
) -> Latencies:
    return _in_threads(name, clients, requests, warmup, sqlite_page(catalog_path, source, limit))
