"""A temporary `redis-server` that loads an RDB: on a unix socket only (no TCP port), in
a private folder, dying with the process that started it.

Loading is Redis's own check that the snapshot is whole; the keys are then copied to
the real target with DUMP/RESTORE, so the target needs no file access and no restart.
"""

import contextlib
import ctypes
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engines.errors import IntegrityError, JarvisError
from engines.redis.connection import RedisTarget
from engines.redis.inspect import binary_version, local_redis_server, rdb_version_of
from engines.redis.rdb_format import RdbSummary
from engines.redis.resp import RespConnection, RespError

LOAD_TIMEOUT_S = 3600
DEFAULT_DATABASES = 16
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class RdbVersionError(JarvisError):
    """The RDB is newer than the Redis that would have to read it."""


def _die_with_parent() -> None:
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


@dataclass(frozen=True)
class LoadedScratch:
    target: RedisTarget  # the unix socket
    version: str
    keys_loaded: int | None
    keys_expired: int | None  # dropped at load time because their expiry had passed


def newer_rdb_message(rdb_version: int, rdb_redis: str | None, reader: str, reader_rdb: int | None):
    made = (
        f"Redis {rdb_redis} (RDB version {rdb_version})"
        if rdb_redis
        else (f"RDB version {rdb_version}")
    )
    reads = f"reads RDB up to version {reader_rdb}" if reader_rdb else "reads older RDB versions"
    return f"the snapshot was written by {made}, but {reader} {reads}"


def scratch_server_for(rdb_path: Path, summary: RdbSummary, label: str):
    """A scratch server loading the snapshot `summary` describes, with room for its databases."""
    return scratch_server(
        rdb_path,
        databases=databases_for(summary.keys_per_db),
        rdb_version=summary.version,
        rdb_redis=summary.redis_version,
        label=label,
    )


def databases_for(held: Iterable[int]) -> int:
    """Redis's default of 16 databases, or enough for the highest one `held` names."""
    return max(DEFAULT_DATABASES, max(held, default=0) + 1)


@contextlib.contextmanager
def scratch_server(
    rdb_path: Path, *, databases: int, rdb_version: int, rdb_redis: str | None, label: str
) -> Iterator[LoadedScratch]:
    binary = local_redis_server()
    if binary is None:
        raise JarvisError(
            "redis-server is not installed here; it is needed to load the RDB before "
            "copying its keys (install the redis-server package), or use --from-json"
        )
    version = binary_version(binary)
    readable = rdb_version_of(version)
    if readable is not None and rdb_version > readable:
        raise RdbVersionError(
            newer_rdb_message(rdb_version, rdb_redis, f"the local redis-server {version}", readable)
            + "; install a newer redis-server here, or restore with --from-json"
        )
    folder = rdb_path.parent
    # Unix socket paths are limited to 107 bytes; the work folder may be deeper than that.
    socket_folder = Path(tempfile.mkdtemp(prefix="jarvis-redis-"))
    socket_path = socket_folder / "scratch.sock"
    log_path = folder / "scratch.log"
    argv = [
        binary, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
        "--dir", str(folder), "--dbfilename", rdb_path.name, "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--logfile", str(log_path), "--databases", str(databases),
        "--protected-mode", "no",
    ]  # fmt: skip
    in_main_thread = threading.current_thread() is threading.main_thread()
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
            start_new_session=True,
            # The death signal follows the creating thread: tie it only to a long-lived one.
            preexec_fn=_die_with_parent if in_main_thread else None,
        )
    except BaseException:
        shutil.rmtree(socket_folder, ignore_errors=True)
        raise
    try:
        target = RedisTarget(None, None, path=str(socket_path))
        try:
            _wait_loaded(process, target, log_path, rdb_version, rdb_redis, version)
        except IntegrityError as error:
            raise IntegrityError(f"{label}: {error}") from None
        log = log_path.read_text(errors="replace")
        loaded = re.search(r"keys loaded: (\d+), keys expired: (\d+)", log)
        yield LoadedScratch(
            target,
            version,
            int(loaded.group(1)) if loaded else None,
            int(loaded.group(2)) if loaded else None,
        )
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(socket_folder, ignore_errors=True)


def _wait_loaded(
    process: subprocess.Popen,
    target: RedisTarget,
    log_path: Path,
    rdb_version: int,
    rdb_redis: str | None,
    version: str,
) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _explain_exit(log_path, rdb_version, rdb_redis, version)
        if Path(target.path or "").exists():
            with (
                contextlib.suppress(OSError, RespError, ConnectionError),
                RespConnection.open(target, 10) as connection,
            ):
                if "loading:0" in connection.call("INFO", "persistence").decode():
                    return
        time.sleep(0.05)
    raise JarvisError(f"the scratch redis-server did not finish loading in {LOAD_TIMEOUT_S} s")


def _explain_exit(log_path: Path, rdb_version: int, rdb_redis: str | None, version: str):
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    if "Can't handle RDB format version" in log:
        raise RdbVersionError(
            newer_rdb_message(rdb_version, rdb_redis, f"the local redis-server {version}", None)
            + "; install a newer redis-server here, or restore with --from-json"
        )
    problem = next(
        (
            line.split(" # ", 1)[-1].strip()
            for line in log.splitlines()
            if any(
                word in line
                for word in ("Short read", "checksum", "Internal error", "corrupt", "Bad file")
            )
        ),
        None,
    )
    if problem:
        raise IntegrityError(f"Redis could not load the snapshot: {problem}")
    last = log.strip().splitlines()[-3:] if log.strip() else ["(no log)"]
    raise JarvisError(f"the scratch redis-server stopped while loading: {' | '.join(last)}")
