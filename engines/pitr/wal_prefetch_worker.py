"""The prefetch worker: one process per `pg_wal/jarvis-fetch/` (wal_prefetch.py) keeping
the segments after where recovery is fetched, checked and waiting, so that each of
PostgreSQL's restore_command calls is a rename.

- It follows `wanted` (rewritten by each slow wal-fetch) and the files the fast path took
  (each one taken means recovery got that far), on that timeline only.
- At most `limit` (BACKUP_WAL_PREFETCH) segments wait or are being fetched; two threads
  fetch, so authenticating and decompressing the next ones overlaps replay.
- Each segment goes through wal_fetch.fetch_checked, exactly as a wal-fetch of that name
  would (sealed identity, content hash, cluster and page header), before a byte is
  written; into `.<name>.part` (there from the fetch's start, so a call for that name
  waits for it instead of fetching it twice), renamed when whole.
- A segment no place holds is the end of the archive; one that fails (damaged, forged,
  another cluster's, I/O) is not spooled: fetching stops before it, so the slow path meets
  it and stops recovery with its own error. Either way nothing after it is fetched until
  recovery moves on.
- It ends once the archive's end is reached and all it fetched was taken, when its
  folder vanishes, or after `idle_exit_s` with nothing taken and no new position (then
  removing what it fetched: recovery is over or paused).
"""

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from engines.config import Settings
from engines.pitr.wal_fetch import WalMissingError, WalSources, fetch_checked, wal_sources
from engines.pitr.wal_files import parse_name, segment_number
from engines.pitr.wal_prefetch import (
    Position,
    drop_behind,
    read_position,
    remove_leftovers,
    spooled_names,
)
from engines.pitr.wal_spools import coming, fetch_folder
from engines.pitr.wal_worker import hold_lock

THREADS = 2
POLL_S = 0.05
IDLE_EXIT_S = 120.0

WRITTEN, MISSING, FAILED, STALE = "written", "missing", "failed", "stale"


class _Prefetcher:
    def __init__(self, settings: Settings, folder: Path, limit: int, idle_exit_s: float) -> None:
        self.settings = settings
        self.folder = folder
        self.limit = limit
        self.idle_exit_s = idle_exit_s
        self.position: Position | None = None  # as `wanted` last said
        self.sources: WalSources | None = None
        self.front = 0  # the newest segment recovery has had, on the position's timeline
        self.cursor = 0  # the next segment to fetch
        self.end: int | None = None  # the first segment not to fetch: missing or failed
        self.ours: set[str] = set()  # fetched by this worker and not yet taken
        self.in_flight: dict[Future, tuple[int, str]] = {}  # -> (generation, name)
        self.generation = 0
        self.last_progress = time.monotonic()
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="wal-prefetch")

    def step(self) -> bool:
        """One look at the folder; False when the worker should end."""
        if not self.folder.is_dir() or not self._follow_wanted():
            return False
        assert self.position is not None
        self._collect()
        present = set(spooled_names(self.folder))
        self._note_taken(present)
        drop_behind(self.folder, replace(self.position, name=self.position.name_of(self.front)))
        self._submit(present)
        now = time.monotonic()
        if self._archive_done() and not self.in_flight and not self.ours & present:
            return False
        if now - self.last_progress > self.idle_exit_s:
            for name in self.ours:
                (self.folder / name).unlink(missing_ok=True)
            return False
        if self.in_flight:
            wait(list(self.in_flight), timeout=POLL_S, return_when=FIRST_COMPLETED)
        else:
            time.sleep(POLL_S)
        return True

    def _follow_wanted(self) -> bool:
        position = read_position(self.folder)
        if position is None:
            return False
        if position != self.position:
            if self.sources is None or self.sources.system_id != position.system_id:
                self.sources = wal_sources(self.settings, position.system_id)
            self.position = position
            self.front = position.number
            self.cursor = position.number + 1
            self.end = None
            self.generation += 1
            self.last_progress = time.monotonic()
        return True

    def _collect(self) -> None:
        for future in [f for f in self.in_flight if f.done()]:
            generation, name = self.in_flight.pop(future)
            outcome = future.result()
            if outcome == WRITTEN:
                self.ours.add(name)
            elif outcome in (MISSING, FAILED) and generation == self.generation:
                assert self.position is not None
                number = segment_number(name, self.position.segment_size)
                self.end = number if self.end is None else min(self.end, number)
        self._drop_past_end()

    def _drop_past_end(self) -> None:
        """Segments fetched past a missing or failed one: recovery cannot reach them
        without passing it, and then the worker is repositioned and fetches again."""
        if self.end is None or self.position is None:
            return
        size, timeline = self.position.segment_size, self.position.timeline
        for name in [n for n in self.ours if n[:8] == timeline]:
            if segment_number(name, size) > self.end:
                (self.folder / name).unlink(missing_ok=True)
                self.ours.discard(name)

    def _note_taken(self, present: set[str]) -> None:
        """The fast path moved these into place: recovery has reached them."""
        assert self.position is not None
        taken = self.ours - present
        if not taken:
            return
        self.ours -= taken
        size = self.position.segment_size
        on_timeline = [n for n in taken if n[:8] == self.position.timeline]
        self.front = max([self.front, *(segment_number(n, size) for n in on_timeline)])
        self.cursor = max(self.cursor, self.front + 1)
        self.last_progress = time.monotonic()

    def _submit(self, present: set[str]) -> None:
        position, sources = self.position, self.sources
        assert position is not None and sources is not None
        waiting = {n for n in present if not position.behind_or_elsewhere(n)}
        fetching = {name for _, name in self.in_flight.values()}
        while len(self.in_flight) < THREADS and self.cursor <= self.front + self.limit:
            if self.end is not None and self.cursor >= self.end:
                return
            if len(waiting) + len(self.in_flight) >= self.limit:
                return
            name = position.name_of(self.cursor)
            self.cursor += 1
            if name in waiting or name in fetching:
                continue
            future = self.pool.submit(self._fetch, sources, name)
            self.in_flight[future] = (self.generation, name)

    def _archive_done(self) -> bool:
        return self.end is not None and self.cursor >= self.end

    def _fetch(self, sources: WalSources, name: str) -> str:
        part = coming(self.folder, name)  # from now on, a call for it waits for it
        try:
            with open(part, "wb") as output:
                outcome = self._fetch_into(output, sources, name)
            if outcome == WRITTEN:
                os.rename(part, self.folder / name)
                return WRITTEN
        except OSError:  # the folder gone, a full disk: the slow path does it itself
            outcome = FAILED
        part.unlink(missing_ok=True)
        return outcome

    def _fetch_into(self, output: BinaryIO, sources: WalSources, name: str) -> str:
        try:
            fetched = fetch_checked(sources, parse_name(name))
        except WalMissingError:
            return MISSING
        except Exception:  # not spooled: the slow path meets it and says what it is
            return FAILED
        position = self.position
        if position is None or len(fetched.data) != position.segment_size:
            return FAILED
        if name[:8] != position.timeline or segment_number(name, len(fetched.data)) <= self.front:
            return STALE  # recovery moved past it meanwhile
        # No fsync: the fast path hands files out only while this worker holds the
        # folder, and the next worker removes whatever a crash or a kill left.
        output.write(fetched.data)
        return WRITTEN

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def run_worker(settings: Settings, pg_wal: Path, idle_exit_s: float = IDLE_EXIT_S) -> None:
    """Prefetch for the recovery of `pg_wal`'s data folder until there is nothing more
    to do; returns at once when another worker holds the folder. A fetch thread may
    still hang on the network when this returns: the caller ends the process."""
    folder = fetch_folder(pg_wal)
    limit = settings.backup_wal_prefetch
    if limit < 1 or not folder.is_dir():
        return
    try:
        lock = hold_lock(folder)
    except OSError:  # the folder went meanwhile
        return
    if lock is None:
        return
    try:
        remove_leftovers(folder)
        prefetcher = _Prefetcher(settings, folder, limit, idle_exit_s)
        try:
            while prefetcher.step():
                pass
        finally:
            prefetcher.close()
    finally:
        os.close(lock)
