"""The repository as restores read it: per object, the best copy there is.

The repository's own copy when it is there at the size the catalog recorded, else
the first copy destination (S3) holding the object. Where an object is is looked up
(a listing the readers make anyway, or one stat), never taken from the catalog's copy
states, which are hints: the readers authenticate the bytes against what the catalog
expects whichever copy they come from. A copy destination that cannot be reached is
said in the log and passed over for a minute (a long-lived workspace tries it again):
what the repository holds is read as if there were no copies, and a read only that
copy could serve says why the copy could not be read.

Read-only: every write goes to the repository itself, never through this view.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from engines.destinations.base import (
    Destination,
    StoredObject,
    key_problem,
    validate_key,
    validate_prefix,
)
from engines.errors import JarvisError, NotFoundError

if TYPE_CHECKING:
    from engines.config import Settings

logger = logging.getLogger("jarvis.reading")

ExpectedSize = Callable[[str], int | None]
PASS_OVER_S = 60.0


class ReadOnlyViewError(JarvisError):
    """A write asked of the read view (a bug of the caller, said plainly)."""


class BestCopy:
    """A read-only `Destination` over `repository` and `copies`, in that order."""

    name = "best copy"

    def __init__(
        self,
        repository: Destination,
        copies: Sequence[Destination],
        expected_size: ExpectedSize = lambda key: None,
    ) -> None:
        self.repository = repository
        self.copies = list(copies)
        self._expected_size = expected_size
        self._chosen: dict[str, tuple[Destination, StoredObject]] = {}
        # copy name: (why it was passed over, when)
        self._unreachable: dict[str, tuple[Exception, float]] = {}
        self._announced: set[str] = set()
        self._copy_id: str | None = None  # read once: each read of a remote one is a GET
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in [self.repository, *self.copies])
        return f"BestCopy({names})"

    @classmethod
    def from_settings(cls, settings: "Settings") -> None:
        return None  # a view the workspace builds, never a configured destination

    # --- which copy ---------------------------------------------------------------------

    def holder(self, key: str) -> str | None:
        """The name of the destination `key` is read from (None: no copy holds it)."""
        found = self._choose(key)
        return None if found is None else found[0].name

    def _choose(self, key: str) -> tuple[Destination, StoredObject] | None:
        with self._lock:
            known = self._chosen.get(key)
        if known is not None:
            return known
        here = self.repository.stat(validate_key(key))
        wanted = self._expected_size(key)
        if here is not None and (wanted is None or here.size == wanted):
            return self._remember(key, self.repository, here)
        failure: Exception | None = None
        for copy in self._reachable():
            try:
                there = copy.stat(key)
            except (OSError, JarvisError) as error:
                self._pass_over(copy, error)
                failure = failure or error
                continue
            if there is not None and (wanted is None or there.size == wanted or here is None):
                if here is not None:
                    logger.warning(
                        "%s: the repository's copy is %d bytes, the catalog recorded %d; "
                        "reading the copy on %s",
                        key, here.size, wanted, copy.name,
                    )  # fmt: skip
                return self._remember(key, copy, there)
        if here is not None:  # at another size: the readers say how it is damaged
            return self._remember(key, self.repository, here)
        failure = failure or self._passed_over_failure()
        if failure is not None:  # the copy passed over may hold it: not said missing
            raise failure
        return None

    def _remember(
        self, key: str, destination: Destination, stored: StoredObject
    ) -> tuple[Destination, StoredObject]:
        with self._lock:
            self._chosen[key] = (destination, stored)
        return destination, stored

    def _announce(self, key: str, destination: Destination) -> None:
        """Say once per object where it is read from, when that is not the repository."""
        if destination is self.repository:
            return
        with self._lock:
            first = key not in self._announced
            self._announced.add(key)
        if first:
            logger.info("reading %s from %s", key, destination.name)

    def _reachable(self) -> list[Destination]:
        now = time.monotonic()
        with self._lock:
            for name, (_, since) in list(self._unreachable.items()):
                if now - since > PASS_OVER_S:
                    del self._unreachable[name]
            return [copy for copy in self.copies if copy.name not in self._unreachable]

    def _pass_over(self, copy: Destination, error: Exception) -> None:
        with self._lock:
            first = copy.name not in self._unreachable
            self._unreachable[copy.name] = (error, time.monotonic())
        if first:
            logger.warning("%s cannot be read, passed over: %s", copy.name, error)

    def _passed_over_failure(self) -> Exception | None:
        with self._lock:
            return next((error for error, _ in self._unreachable.values()), None)

    def pass_over_repository(self, key: str) -> str | None:
        """After the repository's copy of `key` failed its check: read `key` from the
        first copy destination holding it from now on. The copy's name, or None when no
        copy holds it (the failure then stands)."""
        for copy in self._reachable():
            try:
                there = copy.stat(key)
            except (OSError, JarvisError) as error:
                self._pass_over(copy, error)
                continue
            if there is not None:
                self._remember(key, copy, there)
                return copy.name
        return None

    def _forget(self, key: str) -> None:
        with self._lock:
            self._chosen.pop(key, None)

    # --- the face: reads ----------------------------------------------------------------

    def open_read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        for attempt in (1, 2):
            found = self._choose(key)
            if found is None:
                break
            self._announce(key, found[0])
            try:
                return found[0].open_read(key, offset, length)
            except NotFoundError:
                if attempt == 2:
                    raise
                self._forget(key)  # gone since it was looked up (a prune): look again
        raise NotFoundError(self._absent(key))

    def get(self, key: str, local_path: Path) -> None:
        found = self._choose(key)
        if found is None:
            raise NotFoundError(self._absent(key))
        self._announce(key, found[0])
        found[0].get(key, local_path)

    def stat(self, key: str) -> StoredObject | None:
        found = self._choose(key)
        return None if found is None else found[1]

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object any copy holds under `prefix`, in key order, each as the copy it
        is read from holds it (one listing per copy)."""
        validate_prefix(prefix)
        merged = {item.key: (self.repository, item) for item in self.repository.list(prefix)}
        for copy in self._reachable():
            try:
                listed = list(copy.list(prefix))
            except (OSError, JarvisError) as error:
                self._pass_over(copy, error)
                continue
            for item in listed:
                if key_problem(item.key):  # put in the bucket by someone else: unreadable
                    continue
                here = merged.get(item.key)
                if here is None or not self._intact(here[1]):
                    merged[item.key] = (copy, item)
        for key in sorted(merged):
            destination, item = merged[key]
            self._remember(key, destination, item)
            yield item

    def _intact(self, stored: StoredObject) -> bool:
        wanted = self._expected_size(stored.key)
        return wanted is None or wanted == stored.size

    def local_path(self, key: str) -> Path | None:
        found = self._choose(key)
        if found is None or found[0] is not self.repository:
            return None
        return self.repository.local_path(key)

    def repository_id(self) -> str | None:
        """The repository's id; on a host whose repository has none yet (a catalog
        rebuilt from S3), the first copy's, which the artifacts there are bound to."""
        found = self.repository.repository_id()
        if found is not None or self._copy_id is not None:
            return found or self._copy_id
        for copy in self._reachable():
            try:
                self._copy_id = copy.repository_id()
            except (OSError, JarvisError) as error:
                self._pass_over(copy, error)
            if self._copy_id is not None:
                break
        return self._copy_id

    def probe(self) -> Sequence[str]:
        with self._lock:
            return [str(error) for error, _ in self._unreachable.values()]

    def _absent(self, key: str) -> str:
        places = ", ".join(d.name for d in [self.repository, *self.copies])
        return f"{key}: no such object in any copy ({places})"

    # --- the face: writes, refused ------------------------------------------------------

    def _refuse(self, key: str) -> NoReturn:
        raise ReadOnlyViewError(f"{key}: the best-copy view is read-only; write to the repository")

    def open_write(self, key: str) -> NoReturn:
        self._refuse(key)

    def put(
        self, local_path: Path, key: str, progress: Callable[[int], None] | None = None
    ) -> NoReturn:
        self._refuse(key)

    def delete(self, key: str) -> NoReturn:
        self._refuse(key)

    def ensure_repository_id(self, adopted: str | None = None) -> NoReturn:
        self._refuse(".repository-id")
