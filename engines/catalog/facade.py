"""`Catalog`: the SQLite cache of the repository that every part of jarvis-tui shares.

The repository is the truth (each artifact seals its metadata inside); the
catalog can be rebuilt from it and never stores a secret.
"""

from pathlib import Path
from types import TracebackType

from engines.catalog.alert_outbox import AlertOutboxMixin
from engines.catalog.alerts import AlertsMixin
from engines.catalog.artifacts import ArtifactsMixin
from engines.catalog.backups import BackupSetsMixin
from engines.catalog.copies import CopiesMixin
from engines.catalog.db import Database
from engines.catalog.jobs import JobsMixin
from engines.catalog.metrics import MetricsMixin
from engines.catalog.monitoring import MonitoringMixin
from engines.catalog.overview_figures import OverviewFiguresMixin
from engines.catalog.rebuild import RebuildMixin
from engines.catalog.schedule_runs import ScheduleRunsMixin
from engines.catalog.set_pages import SetPagesMixin
from engines.catalog.stats import StatsMixin

DEFAULT_BUSY_TIMEOUT_MS = 30_000


class Catalog(
    BackupSetsMixin,
    SetPagesMixin,
    ArtifactsMixin,
    CopiesMixin,
    JobsMixin,
    AlertsMixin,
    AlertOutboxMixin,
    ScheduleRunsMixin,
    MonitoringMixin,
    MetricsMixin,
    OverviewFiguresMixin,
    StatsMixin,
    RebuildMixin,
):
    """One connection, safe to share between threads; open one per process."""

    def __init__(self, db: Database):
        self._db = db

    @classmethod
    def open(cls, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> "Catalog":
        """Open (creating if needed, mode 0600 in a 0700 folder) and migrate the catalog."""
        return cls(Database(Path(path), busy_timeout_ms=busy_timeout_ms))

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def schema_version(self) -> int:
        return self._db.schema_version

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
