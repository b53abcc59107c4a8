"""The console's one door to the engine.

Every method here blocks on disk or network, so only worker threads call
them. Panes read through one shared catalog connection with a short busy
timeout (a reader should give up quickly and try again on the next poll);
each action runs as a catalogued job in a workspace of its own, with the
engine's longer timeout, exactly as the CLI and the scheduler run it.
"""

import threading
from collections.abc import Callable
from typing import TypeVar

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations.local import LocalRepository
from engines.jobs import JobContext, JobListener
from engines.workspace import Workspace

T = TypeVar("T")

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

    def repository(self) -> LocalRepository:
        return LocalRepository(self.settings.repository_dir)

    def run_job(
        self,
        kind: str,
        description: str,
        work: Callable[[Workspace, JobContext], T],
        listener: JobListener | None = None,
    ) -> T:
        """Run `work` as a job in its own workspace; its exception propagates."""
        listeners = (listener,) if listener else ()
        with Workspace.open(self.settings) as workspace:
            return workspace.run_job(
                kind, description, lambda context: work(workspace, context), listeners=listeners
            )

    def close(self) -> None:
        with self._lock:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None
