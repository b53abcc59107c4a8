"""One computation at a time, shared by every request that arrives while it runs.

A figure that costs tens of milliseconds to read and is asked for by many clients at
once (dashboards polling `GET /api/backups/stats/overview` while a backup changes the
catalog) would otherwise be computed once per request, each in a thread of the pool,
each slower for the others. Here the first request starts the computation in a thread;
the ones arriving before it ends await the same result (an answer read during their
request: honest), and the next request after it starts a new one. A client that hangs
up does not cancel the computation the others await (asyncio.shield). GET /api/health
shares its checks the same way (routes/health.py).

A caller may name what the answer must be read after (`after`: the overview passes the
catalog's change marker it read): it joins a run begun after the same or a later one
(page_cache.not_older), and otherwise
waits for the run under way to end and starts the next (shared in turn). A run begun
before a write the caller knows of (a job it saw finish) would answer from before it.
"""

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from anyio import to_thread

from jarvis_tui.api.page_cache import not_older

T = TypeVar("T")


class SharedRun(Generic[T]):
    """The run of `compute` under way, if any, that every caller meanwhile awaits."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._task: asyncio.Future[T] | None = None
        self._after: object = None  # what the run under way was begun after
        self.waiting = 0  # callers awaiting a run now (what the tests wait for)

    async def answer(self, after: object = None) -> T:
        self.waiting += 1
        try:
            while (
                self._task is not None
                and not self._task.done()
                and not not_older(self._after, after)
            ):
                # Begun before what this caller knows of: let it end, then run again.
                await asyncio.wait([self._task])
            if self._task is None or self._task.done():
                self._task = asyncio.ensure_future(to_thread.run_sync(self._compute))
                self._after = after
            return await asyncio.shield(self._task)
        finally:
            self.waiting -= 1
