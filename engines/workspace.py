"""Everything an action needs, opened once: settings, catalog, repository, keys."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations.local import LocalRepository
from engines.jobs import JobContext, run_job
from engines.keys import keyring_from_settings
from engines.pipeline.crypto import Keyring

T = TypeVar("T")


@dataclass
class Workspace:
    settings: Settings
    catalog: Catalog
    repository: LocalRepository

    @classmethod
    def open(cls, settings: Settings) -> "Workspace":
        return cls(
            settings, Catalog.open(settings.catalog_path), LocalRepository(settings.repository_dir)
        )

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
