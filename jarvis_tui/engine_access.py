"""The console's door to the engine: the catalog for reading, and the engine's names
the panes use.

Every method here blocks on disk, so only worker threads call them. Panes
read through one shared catalog connection with a short busy timeout (a reader
should give up quickly and try again on the next poll). Actions run elsewhere:
each in a process of its own (`job_process`), with the engine's own timeouts,
exactly as the CLI and the scheduler run them.

The app, screens and widgets take the engine's types and helpers from here, never
from `engines` (the `console-through-access` contract in pyproject.toml). Only
modules the console loads anyway before its first paint are named here; what the
restore wizards need comes through `restore_access`, loaded with the first wizard.
"""

import threading
from pathlib import Path

from engines import readiness, settings_check
from engines.catalog import Alert, BackupSet, Catalog, Job, JobEvent
from engines.config import Settings, load_settings
from engines.destinations import Destination, repository_from_settings
from engines.errors import JarvisError
from engines.joblog import close_logging, configure_logging, register_secrets
from engines.jobs import JobLogged, JobProgressed, JobStarted, JobUpdate
from engines.keys import LOST_KEY_WARNING, store_new_key
from engines.plumbing.error_text import error_text
from engines.plumbing.paths import default_env_file
from engines.plumbing.printable import printable
from engines.plumbing.redaction import redact
from engines.settings_check import SettingsCheck, moved_destinations

__all__ = [
    "LOST_KEY_WARNING",
    "Alert",
    "BackupSet",
    "Catalog",
    "EngineAccess",
    "JarvisError",
    "Job",
    "JobEvent",
    "JobLogged",
    "JobProgressed",
    "JobStarted",
    "JobUpdate",
    "Settings",
    "SettingsCheck",
    "all_problems",
    "check_settings",
    "close_logging",
    "configure_logging",
    "default_env_file",
    "error_text",
    "load_settings",
    "moved_destinations",
    "printable",
    "redact",
    "register_secrets",
    "store_new_key",
]

READ_BUSY_TIMEOUT_MS = 2_000
# A missing key's way out in the console's words: its k, not the CLI's keygen.
KEY_ADVICE = "press k to generate one and store it in .env"


def all_problems(settings: Settings) -> tuple[str, ...]:
    return readiness.all_problems(settings, KEY_ADVICE)


def check_settings(env_file: Path | None) -> SettingsCheck:
    return settings_check.check_settings(env_file, key_advice=KEY_ADVICE)


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
