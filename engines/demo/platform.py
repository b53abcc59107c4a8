"""Start and stop the demo platform.

`start_demo` starts a PostgreSQL and a Redis of its own (detached: they outlive the
command, as root under the servers' own accounts), seeds them and the demo's files, and
writes the console's settings; run again while they run, it changes nothing. When its
servers stopped (a reboot), it starts new ones with fresh data and keeps the demo's
repository, catalog and key. `stop_demo` stops the servers and removes everything.
"""

import fcntl
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from engines.demo.layout import DemoLayout
from engines.demo.platform_files import write_app_env, write_platform_files
from engines.demo.postgres_data import DATABASE, USER, seed_postgres
from engines.demo.redis_data import seed_redis
from engines.demo.settings_file import write_demo_env
from engines.demo.state import (
    SERVERS_IN_TMP,
    STATE_FILE,
    DemoState,
    ServerRecord,
    read_state,
    write_state,
)
from engines.errors import JarvisError
from engines.plumbing.paths import default_demo_dir
from engines.plumbing.processes import process_start_token
from engines.repository.lock import LOCK_NAME, read_holder
from engines.scheduling.schedules import SCHEDULER_LOCK_NAME
from engines.servers.postgres import PostgresServer
from engines.servers.process import (
    LOOPBACK,
    ProcessServer,
    reachable_by,
    stop_detached,
    unprivileged_account,
)
from engines.servers.redis import RedisServer

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoPlatform:
    folder: Path
    env_file: Path
    postgres_port: int
    redis_port: int
    already_running: bool = False
    restarted: bool = False  # its servers had stopped: new ones, with fresh data
    seconds: float = 0.0


def demo_folder(folder: Path | None) -> Path:
    return (folder or default_demo_dir()).expanduser().absolute()


def _refuse_foreign(folder: Path, what_to_do: str) -> None:
    """Another user's folder (say one made in /tmp ahead of us, with a demo.json of theirs)
    is never the demo's: it would get the demo's key, or be removed by --stop."""
    try:
        owner = folder.stat().st_uid
    except FileNotFoundError:
        return
    if owner != os.getuid():
        raise JarvisError(f"{folder} belongs to another user (uid {owner}); {what_to_do}")


def _check_folder(folder: Path) -> None:
    if "," in str(folder):
        raise JarvisError(
            f"{folder}: the demo's folder may not contain a comma (its settings list folders "
            "separated by commas); choose another folder"
        )
    if folder.exists() and not folder.is_dir():
        raise JarvisError(f"{folder} is a file, not a folder; choose another folder for the demo")
    _refuse_foreign(folder, "choose a folder of your own for the demo")


def _check_holds_a_demo_or_nothing(folder: Path) -> None:
    """Under the folder's lock only: a start running meanwhile has files in it before its
    demo.json."""
    if folder.is_dir() and any(folder.iterdir()) and not (folder / STATE_FILE).exists():
        raise JarvisError(
            f"{folder} is not empty and holds no demo platform; name a new or empty folder"
        )


def _servers_folder(folder: Path) -> Path:
    """Inside the demo's folder, unless the servers' accounts (run as root) cannot reach
    it there (a home folder only its owner may enter): then one of its own in /tmp."""
    accounts = (unprivileged_account("postgres"), unprivileged_account("redis"))
    if all(reachable_by(account, folder) for account in accounts):
        servers = folder / "servers"
        servers.mkdir(mode=0o711, exist_ok=True)
        return servers
    servers = Path(tempfile.mkdtemp(prefix=SERVERS_IN_TMP, dir="/tmp"))
    servers.chmod(0o711)  # the accounts pass through to their own folders
    return servers


def _record(server: ProcessServer) -> ServerRecord:
    assert server.pid is not None
    return ServerRecord(server.pid, process_start_token(server.pid), server.port)


def _stop_servers(state: DemoState) -> None:
    for record, stop_signal, what in (
        (state.postgres, signal.SIGINT, "the demo's PostgreSQL"),
        (state.redis, signal.SIGTERM, "the demo's Redis"),
    ):
        if record is not None and state.ours(record):
            stop_detached(record.pid, record.start, stop_signal, what)


def _platform(layout: DemoLayout, state: DemoState, **facts: object) -> DemoPlatform:
    assert state.postgres is not None and state.redis is not None
    return DemoPlatform(
        layout.folder, layout.env_file, state.postgres.port, state.redis.port, **facts
    )


@contextmanager
def _one_at_a_time(folder: Path, *, create: bool) -> Iterator[None]:
    """Starts and stops of one demo one after another (a lock on its folder): two `demo`
    run together both failed, each removing what the other had started; now the second
    waits, then finds the first one's demo running."""
    while True:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            if create:
                continue
            yield  # nothing there to stop
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A first start that failed removes its folder: then this one starts afresh.
            if not create or os.fstat(fd).st_nlink > 0:
                yield
                return
        finally:
            os.close(fd)


def start_demo(folder: Path | None = None, progress: Progress | None = None) -> DemoPlatform:
    say = progress or (lambda _line: None)
    began = time.monotonic()
    layout = DemoLayout(demo_folder(folder))
    _check_folder(layout.folder)
    with _one_at_a_time(layout.folder, create=True):
        _check_folder(layout.folder)  # as another start left it, if one ran meanwhile
        _check_holds_a_demo_or_nothing(layout.folder)
        return _start(layout, say, began)


def _start(layout: DemoLayout, say: Progress, began: float) -> DemoPlatform:
    previous = read_state(layout.folder)
    if previous is not None and previous.running:
        if not layout.env_file.exists():  # removed by hand: the servers still need naming
            assert previous.postgres is not None and previous.redis is not None
            settings = layout.settings(previous.postgres.port, previous.redis.port)
            write_demo_env(layout.env_file, settings)
        return _platform(layout, previous, already_running=True)
    if previous is not None:  # stopped underneath it: start afresh, keeping the backups
        _stop_servers(previous)
        shutil.rmtree(previous.servers_folder, ignore_errors=True)
    layout.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = DemoState(_servers_folder(layout.folder))
    write_state(layout.folder, state)
    try:
        state = _start_servers(layout, state, say)
    except BaseException as error:
        state = read_state(layout.folder) or state  # with the servers that did start
        _stop_servers(state)
        shutil.rmtree(state.servers_folder, ignore_errors=True)
        if previous is None:  # nothing of a first start is left
            shutil.rmtree(layout.folder, ignore_errors=True)
        else:  # the backups of earlier starts are kept
            write_state(layout.folder, DemoState(state.servers_folder))
        if isinstance(error, JarvisError | KeyboardInterrupt):
            raise
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")
        raise JarvisError(
            f"the demo platform did not start: {first_line}; nothing of it runs now"
        ) from error
    seconds = time.monotonic() - began
    return _platform(layout, state, restarted=previous is not None, seconds=seconds)


def _start_servers(layout: DemoLayout, state: DemoState, say: Progress) -> DemoState:
    say("starting PostgreSQL")
    postgres = PostgresServer(
        state.servers_folder / "postgres", unprivileged_account("postgres"), detached=True
    ).start()
    state = replace(state, postgres=_record(postgres))
    write_state(layout.folder, state)
    say("starting Redis")
    redis = RedisServer(
        state.servers_folder / "redis", unprivileged_account("redis"), detached=True
    ).start()
    state = replace(state, redis=_record(redis))
    write_state(layout.folder, state)
    say("seeding users, conversations and tracks")
    seed_postgres(postgres)
    say("seeding sessions and queues")
    seed_redis(redis)
    say("writing music, the app's .env and config folder")
    files = layout.files
    write_platform_files(files)
    database_url = f"postgresql://{USER}@{LOOPBACK}:{postgres.port}/{DATABASE}"
    write_app_env(files, database_url, redis.url())
    write_demo_env(layout.env_file, layout.settings(postgres.port, redis.port))
    return state


def _refuse_while_in_use(folder: Path) -> None:
    """A console on the demo (it runs its schedules) or a job in it (it holds the lock)
    would go on writing into a folder half removed, on servers gone."""
    repository = DemoLayout(folder).repository
    holders = [
        holder
        for name in (SCHEDULER_LOCK_NAME, LOCK_NAME)
        if (holder := read_holder(repository, name=name)) is not None
    ]
    if holders:
        users = ", ".join(f"pid {h.get('pid')} ({h.get('purpose', 'unknown')})" for h in holders)
        raise JarvisError(
            f"the demo in {folder} is in use by {users}: quit that console or let its job "
            "finish, then stop the demo again; nothing was stopped or removed"
        )


@dataclass(frozen=True)
class DemoRemoved:
    folder: Path
    stopped: bool  # servers were running


def stop_demo(folder: Path | None = None) -> DemoRemoved | None:
    """Stop the demo's servers and remove its folder; None when there is no demo there."""
    folder = demo_folder(folder)
    with _one_at_a_time(folder, create=False):
        return _stop(folder)


def _stop(folder: Path) -> DemoRemoved | None:
    _refuse_foreign(folder, "nothing was removed")
    state = read_state(folder)
    if state is None:
        if folder.exists():
            raise JarvisError(
                f"{folder} holds no demo platform ({STATE_FILE} is missing); nothing was removed"
            )
        return None
    _refuse_while_in_use(folder)
    stopped = any(state.ours(record) for record in (state.postgres, state.redis))
    _stop_servers(state)
    shutil.rmtree(state.servers_folder, ignore_errors=True)
    shutil.rmtree(folder)
    return DemoRemoved(folder, stopped)
