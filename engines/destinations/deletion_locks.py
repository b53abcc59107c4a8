"""The locks a verb holds while it deletes on destinations (cleanup, delete, prune).

A destination that others may write too (an S3 prefix, which several hosts can
share) is locked with its own lock; a folder needs none beyond the repository's
flock. A destination that cannot be locked now because it cannot be reached is
left out, with why, and its deletions wait for a later run; one that another
process holds stops the verb (or, for prune, is left out naming the holder).
"""

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from engines.destinations.base import Destination
from engines.destinations.s3 import S3Destination
from engines.destinations.s3_lock import S3PrefixLock
from engines.errors import JarvisError, RepositoryLockedError


def prefix_lock(
    destination: Destination, purpose: str
) -> contextlib.AbstractContextManager[S3PrefixLock | None]:
    """The lock to hold while deleting on `destination`: its prefix's for S3; none for
    a folder, which the repository's own flock (or nothing shared) covers."""
    if isinstance(destination, S3Destination):
        return S3PrefixLock(destination, purpose)
    return contextlib.nullcontext()


@dataclass
class DeletionLocks:
    """The destinations a verb may delete on (their locks held), and those it may not
    now (name: why), whose deletions wait for a later run."""

    destinations: list[Destination] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    locks: dict[str, S3PrefixLock] = field(default_factory=dict)

    def ensure_held(self, destination: Destination) -> None:
        """LockLostError if the lock on `destination` was lost (taken over, not renewed)."""
        lock = self.locks.get(destination.name)
        if lock is not None:
            lock.ensure_held()

    def took_over(self) -> list[str]:
        return [
            f"{name}: took over the lock of {lock.took_over_from}"
            for name, lock in self.locks.items()
            if lock.took_over_from
        ]


@contextlib.contextmanager
def locked_for_deleting(
    destinations: Sequence[Destination], purpose: str, *, busy_raises: bool = True
) -> Iterator[DeletionLocks]:
    """Each destination's lock, taken in turn. One that cannot be reached is unavailable;
    one held by another process raises S3PrefixLockedError before anything is deleted
    anywhere, or with `busy_raises` False is unavailable too, the holder named."""
    locks = DeletionLocks()
    with contextlib.ExitStack() as stack:
        for destination in destinations:
            try:
                lock = stack.enter_context(prefix_lock(destination, purpose))
            except RepositoryLockedError as error:
                if busy_raises:
                    raise
                locks.unavailable[destination.name] = str(error)
                continue
            except (JarvisError, OSError) as error:
                locks.unavailable[destination.name] = str(error) or type(error).__name__
                continue
            locks.destinations.append(destination)
            if lock is not None:
                locks.locks[destination.name] = lock
        yield locks
