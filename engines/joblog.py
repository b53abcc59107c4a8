"""Logging for jobs: a rotating owner-only `backup.log`, UTC timestamps, no secrets.

Secrets are registered once (the settings module registers the encryption
key, passwords and tokens) and replaced by "****" wherever text leaves the
process through this module: log records, and through `redact()` the job
events, errors and alerts the catalog stores.
"""

import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from engines.fsutil import FILE_MODE, ensure_private_dir

LOGGER_NAME = "jarvis"
LOG_FILE_NAME = "backup.log"
MAX_LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5
MASK = "****"

_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class SecretRedactingFilter(logging.Filter):
    """Replace every known secret in a record's message, arguments and traceback."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            known = set(self._secrets) | {value for value in secrets if value}
            # Longest first, so a secret containing a shorter one is masked whole.
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


secret_filter = SecretRedactingFilter()
"""The shared filter: add it to any other handler on the 'jarvis' logger (the console's)."""


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values from now on in logs and in what the catalog stores."""
    secret_filter.add(values)


def redact(text: str) -> str:
    return secret_filter.redact(text)


def redact_value(value: Any) -> Any:
    """`redact` applied to every string inside nested dicts and lists."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Creates `backup.log` and every rotated successor with mode 0600."""

    def _open(self) -> TextIO:
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
        os.chmod(self.baseFilename, FILE_MODE)
        return super()._open()


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter(_FORMAT, _DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def close_logging() -> None:
    """Remove and close the handlers `configure_logging` installed."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, "_jarvis_owned", False)]:
        logger.removeHandler(handler)
        handler.close()


def configure_logging(
    log_dir: Path,
    *,
    to_stdout: bool = False,
    level: int = logging.INFO,
    max_bytes: int = MAX_LOG_BYTES,
    backups: int = LOG_BACKUPS,
) -> logging.Logger:
    """Send the 'jarvis' logger to `log_dir/backup.log` (and stdout if asked).

    Calling it again replaces the handlers it installed before, so a second
    call never duplicates lines.
    """
    close_logging()
    ensure_private_dir(log_dir)
    handlers: list[logging.Handler] = [
        _PrivateRotatingFileHandler(
            log_dir / LOG_FILE_NAME, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    ]
    if to_stdout:
        handlers.append(logging.StreamHandler(sys.stdout))
    logger = logging.getLogger(LOGGER_NAME)
    for handler in handlers:
        handler._jarvis_owned = True  # type: ignore[attr-defined]
        handler.setFormatter(_formatter())
        handler.addFilter(secret_filter)
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger
