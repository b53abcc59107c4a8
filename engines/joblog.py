"""Logging for jobs: a rotating owner-only `backup.log`, UTC timestamps, no secrets.

Every handler carries `engines.plumbing.redaction`'s filter; `register_secrets` and `redact`
are re-exported here for the callers that configure logging.
"""

import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from engines.plumbing.fsutil import FILE_MODE, ensure_private_dir
from engines.plumbing.os_errors import explain_os_error
from engines.plumbing.redaction import MASK, redact, redact_value, register_secrets, secret_filter

__all__ = ["MASK", "configure_logging", "log_file", "redact", "redact_value", "register_secrets"]

LOGGER_NAME = "jarvis"
LOG_FILE_NAME = "backup.log"
MAX_LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5

_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Creates `backup.log` and every rotated successor with mode 0600."""

    _failure_said = False

    def _open(self) -> TextIO:
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
        os.chmod(self.baseFilename, FILE_MODE)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        """A full or read-only log folder: said once, in one line, instead of logging's
        traceback for every record; the work itself goes on (the catalog keeps its log)."""
        if self._failure_said:
            return
        self._failure_said = True
        error = sys.exc_info()[1]
        where = self.baseFilename
        reason = explain_os_error(error, where) if isinstance(error, OSError) else error
        sys.stderr.write(f"jarvis-tui: warning: the log is not being written: {reason}\n")


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter(_FORMAT, _DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def log_file() -> Path | None:
    """The `backup.log` the 'jarvis' logger writes to, once `configure_logging` ran."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if getattr(handler, "_jarvis_owned", False) and hasattr(handler, "baseFilename"):
            return Path(handler.baseFilename)
    return None


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
