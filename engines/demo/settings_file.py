"""The console's settings for the demo: a `.env` in the demo's folder naming its servers,
folders, repository and catalog, with a key generated as `jarvis-tui keygen` does (kept
when the file is written again, so the demo's backups stay readable)."""

import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from engines.config import VARIABLES
from engines.dotenv import read_env_file
from engines.keys import KEY_VARIABLE, store_new_key
from engines.plumbing.fsutil import atomic_output

_PLAIN = re.compile(r"[A-Za-z0-9_./:@,+=-]*")


def _quoted(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_demo_env(path: Path, values: Mapping[str, str]) -> None:
    """`values` and the key into `path` (0600); a new key only when it has none yet."""
    if not (path.exists() and read_env_file(path).get(KEY_VARIABLE)):
        path.unlink(missing_ok=True)
        store_new_key(path, environ={})
    key = read_env_file(path)[KEY_VARIABLE]
    lines = [
        "# The demo platform's settings (jarvis-tui demo); jarvis-tui demo --stop removes them",
        *(f"{name}={_quoted(value)}" for name, value in values.items()),
        f"{KEY_VARIABLE}={key}",
    ]
    with atomic_output(path, mode=0o600) as handle:
        handle.write(("\n".join(lines) + "\n").encode())


def overriding_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """The settings this process's environment sets, which would win over the demo's."""
    environ = os.environ if environ is None else environ
    return [variable.name for variable in VARIABLES if variable.name in environ]


def clear_overrides(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove them, so that the console and its jobs read the demo's settings only."""
    environ = os.environ if environ is None else environ
    names = overriding_variables(environ)
    for name in names:
        del environ[name]
    return names
