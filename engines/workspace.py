"""Everything an action needs, opened once: settings, catalog, repository, keys.

`repository` is a `Destination`: every read and write of stored bytes goes through
its face. What is inherently of this host and not stored bytes has one place here:
the repository lock, private work folders and the clean-up of temporaries a killed
process left, all kept in `local_root`.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations import Destination, copy_destinations, repository_from_settings
from engines.destinations.best_copy import BestCopy
from engines.jobs import JobContext, run_job
from engines.keys import keyring_from_settings
from engines.pipeline.crypto import Keyring
from engines.plumbing.fsutil import private_work_folder, remove_abandoned_temporaries
from engines.repository.lock import RepositoryLock

T = TypeVar("T")


@dataclass
class Workspace:
    settings: Settings
    catalog: Catalog
    repository: Destination
    _reader: Destination | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> "Workspace":
        return cls(
            settings, Catalog.open(settings.catalog_path), repository_from_settings(settings)
        )

    @property
    def local_root(self) -> Path:
        """The folder on this host (BACKUP_DIR) that holds the lock and the work folders;
        for the local destination, also its stored bytes."""
        return self.settings.repository_dir

    def reader(self) -> Destination:
        """The repository as restores, verify, export and decrypt read it: each object
        from the repository when it is there at the catalogued size, else from the
        first copy destination (S3) holding it. Writes go to `repository` only."""
        if self._reader is None:
            copies = copy_destinations(self.settings)
            self._reader = (
                BestCopy(self.repository, copies, self._catalogued_size)
                if copies
                else self.repository
            )
        return self._reader

    def _catalogued_size(self, key: str) -> int | None:
        artifact = self.catalog.find_artifact_by_relpath(key)
        return None if artifact is None else artifact.stored_size

    def lock(self, purpose: str, *, reading_only: bool = False) -> RepositoryLock:
        """The one-writer lock of the repository (see `RepositoryLock`)."""
        return RepositoryLock(self.local_root, purpose, reading_only=reading_only)

    def work_folder(self, purpose: str, *, needed: int = 0) -> AbstractContextManager[Path]:
        """A private scratch folder on this host for `purpose`, removed afterwards."""
        return private_work_folder(self.local_root, purpose, needed=needed)

    def remove_abandoned_temporaries(self) -> list[Path]:
        """Temporaries and work folders of killed processes under `local_root`; run under
        the repository lock, so no writer of ours is at work meanwhile."""
        return remove_abandoned_temporaries(self.local_root)

    def keyring(self) -> Keyring:
        return keyring_from_settings(self.settings)

    def run_job(
        self,
        kind: str,
        description: str,
        work: Callable[[JobContext], T],
        *,
        listeners: tuple[Callable, ...] = (),
    ) -> T:
        return run_job(self.catalog, kind, description, work, listeners=listeners)

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
