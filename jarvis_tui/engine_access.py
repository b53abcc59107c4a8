"""The console's door to the catalog for reading.

Every method here blocks on disk, so only worker threads call them. Panes
read through one shared catalog connection with a short busy timeout (a reader
should give up quickly and try again on the next poll). Actions run elsewhere:
each in a process of its own (`job_process`), with the engine's own timeouts,
exactly as the CLI and the scheduler run them.
"""

import threading

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations import Destination, repository_from_settings

READ_BUSY_TIMEOUT_MS = 2_000


class EngineAccess:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    def catalog(self) -> Catalog:
        """The shared reading connection, opened (and orphaned jobs marked) on first use."""
        with self._lock:
            if self._catalog is None:
                catalog = Catalog.open(
                    self.settings.catalog_path, busy_timeout_ms=READ_BUSY_TIMEOUT_MS
                )
                catalog.mark_orphaned_jobs()
                self._catalog = catalog
            return self._catalog

    def repository(self) -> Destination:
        return repository_from_settings(self.settings)

    def close(self) -> None:
        with self._lock:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None
