"""The one place secrets are taken out of text that leaves the process.

The settings register every configured secret once (keys, passwords, tokens, the
secret parts of URLs); `redact` then replaces them with "****" in log records (the
logging filter below), in everything the catalog stores (job events and errors,
alerts and their delivery, artifact and set errors) and in the errors shown to the
operator. Credentials inside any URL (`user:password@`, `?token=`), configured or
not, are masked too, so an error that echoes a URL back cannot leak one.
"""

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "****"

# `scheme://user:password@host`: the password, whatever the scheme.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)")
_SECRET_WORDS = r"(?:token|key|secret|passw|pwd|sig|auth|credential)"
_SECRET_NAME = re.compile(_SECRET_WORDS, re.IGNORECASE)
# `?token=...`, `&api_key=...`, `&X-Amz-Signature=...` and the like.
_SECRET_QUERY = re.compile(
    rf"(?P<head>[?&;][^=&\s#]*{_SECRET_WORDS}[^=&\s#]*=)[^&\s#\"']+", re.IGNORECASE
)
# Slack's incoming-webhook path is itself the credential; its shape (team, bot, 24-char
# token) keeps ordinary paths like /opt/app/services/auth/config/main readable.
_SLACK_HOOK = re.compile(r"(?P<head>/services/)T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}")
SHORTEST_PATH_SECRET = 8


def url_secret_parts(url: str, *, path_is_secret: bool = False) -> list[str]:
    """The parts of `url` that are credentials: its password, its query values, and with
    `path_is_secret` (a webhook) its path and the path's last segment."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password, unquote(password)] if password else []
    found.extend(
        value
        for name, value in parse_qsl(parts.query)
        if _SECRET_NAME.search(name) and len(value) >= 4  # not sslmode=require
    )
    if path_is_secret and len(parts.path.strip("/")) >= SHORTEST_PATH_SECRET:
        found.append(parts.path)
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if len(last) >= SHORTEST_PATH_SECRET:
            found.append(last)
    return found


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
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\g<head>{MASK}", text)
        if "=" in text:
            text = _SECRET_QUERY.sub(rf"\g<head>{MASK}", text)
        if "/services/" in text:
            text = _SLACK_HOOK.sub(rf"\g<head>{MASK}", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
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
"""The shared filter: every handler on the 'jarvis' logger carries it."""


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values from now on in logs, in what the catalog stores and in errors."""
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
