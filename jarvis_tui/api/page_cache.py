"""The last few answers of a read route, kept while the catalog has not changed.

Monitors poll the same page (`GET /api/backups`, `jq '.[0]'`) much more often than
backups finish. An answer is a function of the request's URL and the catalog only, so
it is kept under the catalog's change marker (Catalog.change_marker: a counter every
write to the sets, their artifacts or their copies moves on, from any process) taken
before it was built; any such write since makes the marker differ and the page is
built again. A running job's progress does not: polls during a backup still hit.
Small and bounded: a few dozen answers, none larger than MAX_BODY_BYTES.

Requests for a page while it is being built wait for that build (one build per page at
a time): while a backup or `sync` changes the catalog between polls, 20 monitors asking
for the same page would otherwise each build it, each slower for the others. A waiting
request takes the build's answer only when the build began under the marker the request
read or a later one: one that read a newer marker (a write committed before it arrived,
say a job a client saw finish) would otherwise get a page read before that write. It
waits, then builds under its own marker, that build shared by the requests that read it
too. Should the build fail, the waiting requests go on as if none were under way.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_ENTRIES = 32
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Answer:
    body: bytes
    headers: dict[str, str]


@dataclass
class _Build:
    """A page being built under `marker`; `answer` is set before `done` (None: failed)."""

    marker: object
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None


def not_older(read: object, wanted: object) -> bool:
    """An answer read under change marker `read` is right for a request that read
    `wanted`: the same, or later (the marker only moves on; markers that cannot be
    ordered must be equal)."""
    try:
        return bool(read >= wanted)  # type: ignore[operator]
    except TypeError:
        return read == wanted


class PageCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_body_bytes: int = MAX_BODY_BYTES):
        self._max_entries = max_entries
        self._max_body_bytes = max_body_bytes
        self._entries: OrderedDict[str, tuple[object, Answer]] = OrderedDict()
        self._building: dict[str, _Build] = {}
        self._lock = threading.Lock()
        self.waiting = 0  # requests waiting for a build now (what the tests wait for)

    def get(self, key: str, marker: object, build: Callable[[], Answer]) -> Answer:
        """The answer kept for `key` under `marker`, the one being built for `key` (waited
        for), or `build()`'s (then kept)."""
        with self._lock:
            kept = self._entries.get(key)
            # Kept answers only under the very marker: a catalog copied back in place from
            # an older copy moves the counter back, and a newer kept page would then stay.
            if kept is not None and kept[0] == marker:
                self._entries.move_to_end(key)
                return kept[1]
            under_way = self._building.get(key)
            if under_way is None:
                mine = self._building[key] = _Build(marker)
            else:
                self.waiting += 1
        if under_way is not None:
            under_way.done.wait()
            with self._lock:
                self.waiting -= 1
            if under_way.answer is not None and not_older(under_way.marker, marker):
                return under_way.answer
            # It failed, or read the catalog before a write this request's marker shows:
            # this request builds (or waits for a build under its own marker).
            return self.get(key, marker, build)
        try:
            # Outside the lock: requests for other pages go on meanwhile.
            mine.answer = build()
        finally:
            with self._lock:
                del self._building[key]
                if mine.answer is not None and len(mine.answer.body) <= self._max_body_bytes:
                    self._entries[key] = (marker, mine.answer)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self._max_entries:
                        self._entries.popitem(last=False)
            mine.done.set()
        return mine.answer
