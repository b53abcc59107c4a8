"""The demo platform end to end, with real processes: `jarvis-tui demo` starts and seeds
its own PostgreSQL and Redis, `backup full` and a PostgreSQL restore into a new database
work on it, and `demo --stop` leaves nothing running and nothing on disk. The console
offers it on a first start with nothing to back up."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engines.demo import platform
from engines.demo.platform import start_demo, stop_demo
from engines.demo.postgres_data import DATABASE, TABLE_ROWS, USER
from engines.errors import JarvisError
from engines.plumbing.paths import default_demo_dir
from engines.plumbing.processes import process_alive, process_start_token
from engines.servers.process import group_members_alive
from engines.servers.redis import RedisServer
from tests.console_fixtures import FIXED_NOW, screen_words, settle
from tests.support.files_env import REPO_ROOT, child_env

RESTORED = "jarvis_db_restored"


def jarvis(*argv: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jarvis_tui.cli", *map(str, argv)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def demo_dir(isolated_env) -> Iterator[Path]:
    folder = isolated_env.cwd / "demo"
    try:
        yield folder
    finally:  # a failed test leaves no server running
        if (folder / "demo.json").exists():
            stop_demo(folder)


def tables(port: int, database: str) -> dict[str, tuple[int, str]]:
    """Every table of `database`: its rows and a digest of their contents."""
    with psycopg.connect(host="127.0.0.1", port=port, user=USER, dbname=database) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return {
            name: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f'FROM "{name}" t'
            ).fetchone()
            for name in names
        }


def test_the_demo_backs_up_restores_and_leaves_nothing_behind(demo_dir):
    began = time.monotonic()
    started = jarvis("demo", "--no-console", "--dir", demo_dir)
    assert started.returncode == 0, started.stderr
    env_file = demo_dir / ".env"
    assert f"open the console on it:  jarvis-tui --env-file {env_file}" in started.stdout
    state = json.loads((demo_dir / "demo.json").read_text())
    pids = [state["postgres"]["pid"], state["redis"]["pid"]]
    servers_folder = Path(state["servers_folder"])

    backup = jarvis("--env-file", env_file, "backup", "full")
    first_backup_s = time.monotonic() - began
    assert backup.returncode == 0, backup.stdout + backup.stderr
    for source in ("postgres", "redis", "files", "secrets", "config"):
        assert f"  {source:<8}  ok" in backup.stdout
    print(f"demo start to a complete first backup: {first_backup_s:.1f} s")
    assert first_backup_s < 120  # the promise: the main job seen within two minutes

    restore = jarvis(
        "--env-file", env_file, "restore", "postgres", "latest", "--target-db", RESTORED
    )
    assert restore.returncode == 0, restore.stdout + restore.stderr
    port = state["postgres"]["port"]
    original = tables(port, DATABASE)
    assert {name: rows for name, (rows, _digest) in original.items()} == TABLE_ROWS
    assert tables(port, RESTORED) == original

    again = jarvis("demo", "--no-console", "--dir", demo_dir)
    assert "the demo platform is already running" in again.stdout
    assert json.loads((demo_dir / "demo.json").read_text()) == state

    stopped = jarvis("demo", "--stop", "--dir", demo_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert f"demo platform: stopped its servers and removed {demo_dir}" in stopped.stdout
    assert not demo_dir.exists() and not servers_folder.exists()
    for pid in pids:
        assert not process_alive(pid) and not group_members_alive(pid)


def test_stop_refuses_a_folder_that_is_no_demo(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    refused = jarvis("demo", "--stop", "--dir", tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"jarvis-tui: {tmp_path} holds no demo platform (demo.json is missing); "
        "nothing was removed\n"
    )
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_stop_never_touches_processes_or_folders_a_forged_demo_json_names(tmp_path):
    """demo.json is only a hint: processes that are not the demo's servers (even with their
    true start token, or none) are not signalled, a folder not made by the demo not removed."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("mine")
    strangers = [
        subprocess.Popen(["sleep", "600"], cwd=precious, start_new_session=True) for _ in range(2)
    ]
    try:
        forged = tmp_path / "forged"
        forged.mkdir()
        postgres, redis = (
            {"pid": strangers[0].pid, "start": "0", "port": 5432},
            {"pid": strangers[1].pid, "start": process_start_token(strangers[1].pid), "port": 1},
        )
        state = {"servers_folder": str(precious), "postgres": postgres, "redis": redis}
        (forged / "demo.json").write_text(json.dumps(state))
        removed = stop_demo(forged)
        assert removed is not None and not removed.stopped
        assert not forged.exists()
        assert (precious / "data.txt").read_text() == "mine"
        assert [stranger.poll() for stranger in strangers] == [None, None]
    finally:
        for stranger in strangers:
            stranger.kill()
            stranger.wait()


@pytest.fixture
def fresh_host(isolated_env, monkeypatch) -> None:
    """Nothing configured, and the guide's folders absent whatever this machine's /tmp holds."""
    monkeypatch.setenv("BACKUP_FILE_PATHS", str(isolated_env.cwd / "jarvis-music-uploads"))


def test_a_start_that_fails_stops_what_it_started_and_leaves_nothing(demo_dir, monkeypatch):
    class RedisThatExits(RedisServer):
        def __init__(self, base_dir, account, **options):
            super().__init__(base_dir, account, binary="/bin/false", **options)

    monkeypatch.setattr(platform, "RedisServer", RedisThatExits)
    states = []

    def progress(line: str) -> None:
        if line == "starting Redis":  # PostgreSQL runs and is recorded by now
            states.append(json.loads((demo_dir / "demo.json").read_text()))

    with pytest.raises(JarvisError) as refused:
        start_demo(demo_dir, progress)
    assert str(refused.value) == (
        "the demo platform did not start: redis exited with code 1; nothing of it runs now"
    )
    (state,) = states
    assert not process_alive(state["postgres"]["pid"])
    assert not demo_dir.exists() and not Path(state["servers_folder"]).exists()


def test_the_demo_wants_a_folder_of_its_own(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(JarvisError, match="is not empty and holds no demo platform"):
        start_demo(tmp_path)
    with pytest.raises(JarvisError, match="is a file, not a folder"):
        start_demo(tmp_path / "notes.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _app():
    from jarvis_tui.app import make_app

    return make_app(None, clock=lambda: FIXED_NOW, poll_seconds=None, host_scheduler=False)


async def test_a_first_start_with_nothing_to_back_up_offers_the_demo_then_the_key(fresh_host):
    app = _app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        words = screen_words(app)
        assert "Nothing to back up yet" in words
        assert "Start the demo platform" in words
        await pilot.press("escape")  # not now: the key is offered as before
        await settle(pilot)
        assert "No encryption key is configured" in screen_words(app)


async def test_the_console_starts_the_demo_and_moves_onto_it(fresh_host):
    app = _app()
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            await settle(pilot)
            await pilot.click("#start")
            await settle(pilot)
            assert app.env_file == default_demo_dir() / ".env"
            assert app.settings.postgres_configured and app.settings.redis_configured
            assert app.settings.backup_encryption_key is not None
            words = screen_words(app)
            assert "Nothing to back up yet" not in words
            assert "No encryption key is configured" not in words
    finally:
        stop_demo(default_demo_dir())
    assert not default_demo_dir().exists()


def test_stop_refuses_while_a_console_uses_the_demo(tmp_path):
    """A console on the demo (it holds the demo's schedules) kept writing into a folder
    `demo --stop` was removing: it failed half way ('repository: Directory not empty')."""
    from engines.repository.lock import RepositoryLock
    from engines.scheduling.schedules import SCHEDULER_LOCK_NAME

    demo = tmp_path / "demo"
    (demo / "repository").mkdir(parents=True)
    (demo / "demo.json").write_text(json.dumps({"servers_folder": str(demo / "servers")}))
    console = RepositoryLock(demo / "repository", "scheduler (console)", name=SCHEDULER_LOCK_NAME)
    with console:
        with pytest.raises(JarvisError) as refused:
            stop_demo(demo)
        assert str(refused.value) == (
            f"the demo in {demo} is in use by pid {os.getpid()} (scheduler (console)): quit "
            "that console or let its job finish, then stop the demo again; nothing was "
            "stopped or removed"
        )
        assert (demo / "demo.json").exists()
    assert stop_demo(demo) is not None and not demo.exists()


def test_two_demo_commands_at_once_start_one_demo(demo_dir):
    """Both failed ('initdb failed', a vanished .demo.json.tmp), each removing what the
    other had started; now the second waits for the first and finds its demo running."""
    argv = [sys.executable, "-m", "jarvis_tui.cli", "demo", "--no-console", "--dir", demo_dir]
    runs = [
        subprocess.Popen(argv, cwd=REPO_ROOT, env=child_env(), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("already running" in output for output in outputs) == 1, outputs
    state = json.loads((demo_dir / "demo.json").read_text())
    assert process_alive(state["postgres"]["pid"]) and process_alive(state["redis"]["pid"])


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user takes root")
def test_a_folder_of_another_user_is_never_the_demos(tmp_path):
    """Made ahead in /tmp by someone else, with a demo.json: root's `demo` wrote the demo's
    key into it, and `demo --stop` removed it."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "demo.json").write_text(json.dumps({"servers_folder": str(theirs / "servers")}))
    os.chown(theirs, 65534, 65534)
    for attempt in (start_demo, stop_demo):
        with pytest.raises(JarvisError, match=r"belongs to another user \(uid 65534\)"):
            attempt(theirs)
    assert [p.name for p in theirs.iterdir()] == ["demo.json"]
