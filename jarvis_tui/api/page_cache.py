"""The last few answers of a read route, kept while the catalog has not changed.

Monitors poll the same page (`GET /api/backups`, `jq '.[0]'`) much more often than
backups finish. An answer is a function of the request's URL and the catalog only, so
it is kept under the catalog's change marker (Catalog.change_marker: a counter every
write to the sets, their artifacts or their copies moves on, from any process) taken
before it was built; any such write since makes the marker differ and the page is
built again. A running job's progress does not: polls during a backup still hit.
Small and bounded: a few dozen answers, none larger than MAX_BODY_BYTES.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 32
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Answer:
    body: bytes
    headers: dict[str, str]


class PageCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_body_bytes: int = MAX_BODY_BYTES):
        self._max_entries = max_entries
        self._max_body_bytes = max_body_bytes
        self._entries: OrderedDict[str, tuple[object, Answer]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, marker: object, build: Callable[[], Answer]) -> Answer:
        """The answer kept for `key` under `marker`, or `build()`'s (then kept)."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None and kept[0] == marker:
                self._entries.move_to_end(key)
                return kept[1]
        answer = build()  # outside the lock: requests for other pages go on meanwhile
        if len(answer.body) <= self._max_body_bytes:
            with self._lock:
                self._entries[key] = (marker, answer)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return answer
