"""Another host's backups, browsed (BACKUP_BROWSE): its destination, every write refused.

Reads pass through; a write, a delete or making a repository id raises
ReadOnlyBrowseError, so nothing of this host ever lands in another host's prefix,
whichever verb asks.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from engines.destinations.base import Destination, StoredObject, key_problem
from engines.errors import ReadOnlyBrowseError

if TYPE_CHECKING:
    from engines.config import Settings


def refusal(what: str, where: str) -> ReadOnlyBrowseError:
    return ReadOnlyBrowseError(
        f"{what} is refused while browsing {where} read-only (BACKUP_BROWSE / --browse); "
        "run it without --browse, on the host that owns those backups"
    )


class ReadOnlyDestination:
    def __init__(self, inner: Destination, where: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.where = where

    def __repr__(self) -> str:
        return f"ReadOnlyDestination({self.inner!r})"

    @classmethod
    def from_settings(cls, settings: "Settings") -> None:
        return None  # made by the registry while browsing, never configured as such

    def _refuse(self, what: str) -> NoReturn:
        raise refusal(what, self.where)

    def open_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        self._refuse(f"writing {key}")

    def put(
        self, local_path: Path, key: str, progress: Callable[[int], None] | None = None
    ) -> None:
        self._refuse(f"writing {key}")

    def delete(self, key: str) -> None:
        self._refuse(f"deleting {key}")

    def ensure_repository_id(self, adopted: str | None = None) -> str:
        found = self.inner.repository_id()
        if found is None:
            self._refuse("making a repository id")
        return found

    def open_read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        return self.inner.open_read(key, offset, length)

    def get(self, key: str, local_path: Path) -> None:
        self.inner.get(key, local_path)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        # Names no repository object has (put there by hand) cannot be read: left out.
        return (item for item in self.inner.list(prefix) if not key_problem(item.key))

    def stat(self, key: str) -> StoredObject | None:
        return self.inner.stat(key)

    def local_path(self, key: str) -> Path | None:
        return None  # nothing a caller could write beside

    def probe(self) -> Sequence[str]:
        """Reachable and holding a repository; no test write (it would be a write)."""
        try:
            found = self.inner.repository_id()
        except Exception as error:
            return [f"{self.where}: {error}"]
        if found is None:
            return [f"{self.where} holds no repository (no .repository-id); check BACKUP_BROWSE"]
        return []

    def repository_id(self) -> str | None:
        return self.inner.repository_id()
