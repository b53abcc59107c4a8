"""The settings of a long-running WAL worker, read again when its env file changes.

A worker loads them once, at its start; a key rotated in the env file afterwards
(`keygen --rotate`, then `rekey`, which seals the archive's record and WAL again under
the new key) would otherwise leave it sealing under the old key, unable to read what
rekey sealed under the new one, and failing every push for as long as it lives. The
file's identity (inode, size, time) is compared before each use; an env file that does
not read back valid (half written) keeps the settings in use until it does.
"""

import os
import threading
from pathlib import Path

from engines.config import Settings, load_settings
from engines.errors import SettingsError
from engines.joblog import register_secrets


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


class FreshSettings:
    """Call it for the settings as the env file says now."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stamp = _stamp(settings.env_file)
        self._lock = threading.Lock()

    def __call__(self) -> Settings:
        with self._lock:
            stamp = _stamp(self._settings.env_file)
            if stamp == self._stamp:
                return self._settings
            try:
                fresh = load_settings(env_file=self._settings.env_file)
            except SettingsError:
                return self._settings  # read again at the next call
            register_secrets(fresh.secret_values())
            self._settings, self._stamp = fresh, stamp
            return fresh
