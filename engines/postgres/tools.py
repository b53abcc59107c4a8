"""Finding pg_dump, pg_dumpall, pg_restore and psql of the right major version.

pg_dump refuses servers newer than itself, and a much newer pg_restore writes
settings an older server rejects; so pick the server's own major version when it
is installed, else the oldest newer one. Children die with us (Linux), so a killed
jarvis-tui never leaves a pg_restore writing on.
"""

import ctypes
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from engines.errors import JarvisError

TOOL_NAMES = ("pg_dump", "pg_dumpall", "pg_restore", "psql")
SEARCH_PATTERNS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class VersionMismatchError(JarvisError):
    """No client tools new enough for the server (the guide's "version mismatch")."""


@dataclass(frozen=True)
class ClientTools:
    bin_dir: Path
    major: int
    version: str

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)


def tool_version(binary: Path) -> tuple[int, str] | None:
    try:
        result = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    found = _VERSION.search(result.stdout)
    if result.returncode != 0 or not found:
        return None
    return int(found.group(1)), result.stdout.strip().split(")", 1)[-1].strip()


def candidate_bin_dirs() -> list[Path]:
    folders: list[Path] = []
    for pattern in SEARCH_PATTERNS:
        folders += [Path(p) for p in glob.glob(pattern)]
    for name in TOOL_NAMES:
        found = shutil.which(name)
        if found:
            folders.append(Path(os.path.realpath(found)).parent)
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


@cache
def installed_tools() -> tuple[ClientTools, ...]:
    """Every folder holding all four tools, with their version (looked up once a process)."""
    found: dict[int, ClientTools] = {}
    for folder in candidate_bin_dirs():
        if not all((folder / name).is_file() for name in TOOL_NAMES):
            continue
        version = tool_version(folder / "pg_dump")
        if version is not None and version[0] not in found:
            found[version[0]] = ClientTools(folder, *version)
    return tuple(sorted(found.values(), key=lambda tools: tools.major))


def choose_tools(
    server_version_num: int, server_version: str, available: tuple[ClientTools, ...]
) -> ClientTools:
    """The server's major version if installed, else the oldest newer one."""
    server_major = server_version_num // 10000
    usable = [tools for tools in available if tools.major >= server_major]
    if usable:
        return usable[0]
    if not available:
        raise VersionMismatchError(
            "pg_dump, pg_dumpall, pg_restore and psql were not found; install the PostgreSQL "
            f"client {server_major} (Debian/Ubuntu: apt-get install postgresql-client-"
            f"{server_major}) or put its bin folder on PATH"
        )
    newest = available[-1]
    raise VersionMismatchError(
        f"version mismatch: the server runs PostgreSQL {server_version} but the newest "
        f"pg_dump/pg_restore found is {newest.version} ({newest.bin_dir}); pg_dump cannot "
        f"read a newer server. Install the PostgreSQL {server_major} client tools "
        f"(Debian/Ubuntu: apt-get install postgresql-client-{server_major}) or put their bin "
        "folder on PATH, then run the command again"
    )


def low_priority_prefix() -> list[str]:
    """`ionice -c3 nice -n 19` where available, so a backup yields to production load."""
    prefix: list[str] = []
    ionice = shutil.which("ionice")
    if ionice:
        prefix += [ionice, "-c3"]
    nice = shutil.which("nice")
    if nice:
        prefix += [nice, "-n", "19"]
    return prefix


def die_with_parent() -> None:
    # Runs in the child between fork and exec.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def choose_restore_tools(
    server_version_num: int,
    server_version: str,
    dump_major: int | None,
    available: tuple[ClientTools, ...],
) -> ClientTools:
    """Tools for the server that can also read an archive written by pg_dump `dump_major`."""
    tools = choose_tools(server_version_num, server_version, available)
    if dump_major is None or tools.major >= dump_major:
        return tools
    newer = [t for t in available if t.major >= dump_major]
    if newer:
        return newer[0]
    raise VersionMismatchError(
        f"version mismatch: this backup was written by pg_dump {dump_major}, and pg_restore "
        f"{tools.version} ({tools.bin_dir}) cannot read archives of newer versions. Install "
        f"the PostgreSQL {dump_major} client tools (Debian/Ubuntu: apt-get install "
        f"postgresql-client-{dump_major}) or put their bin folder on PATH"
    )
