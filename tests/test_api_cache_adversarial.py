"""Adversarial checks of the API's caches (issue #17): the page cache of `GET /api/backups`,
the overview's kept figures and shared reading, and the download's checked files.

Every catalog write path a monitor could see is made while one real server keeps its
answers (the same page URL asked again, the overview asked again), and each answer is
compared with one read afresh (a page URL never asked before; the overview's figures read
by this process). Requests that arrive while a page or the overview is being read are
held still by an event around the real reading (in-process app, as
test_api_overview_shared.py), so which request sees which write is decided by the test.
"""

import asyncio
import mmap
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from engines.catalog.times import utc_now
from engines.config import load_settings
from engines.monitoring.overview import collect_overview
from engines.workspace import Workspace
from jarvis_tui.api.app import build_app
from jarvis_tui.api.auth import BearerAuth
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.download.body import UNHASHED
from jarvis_tui.api.download.checked_files import SETTLE_NS, no_writer
from jarvis_tui.api.page_cache import Answer, PageCache
from jarvis_tui.api.routes import backups as backups_route
from jarvis_tui.api.routes import overview as overview_route
from jarvis_tui.exit_codes import ExitCode
from tests.support.api_server import TOKEN, ApiServer, in_process_client, until
from tests.support.files_env import FilesEnv, make_files_env

PAGE = "/api/backups"
OVERVIEW = "/api/backups/stats/overview"
WAIT = 60.0


@pytest.fixture
def env(tmp_path: Path) -> FilesEnv:
    files = make_files_env(tmp_path)
    files.set(JARVIS_API_TOKEN=TOKEN)
    (files.data / "a.txt").write_text("kept answers must follow the catalog\n")
    assert files.cli("backup", "files") == ExitCode.OK
    (files.data / "b.txt").write_text("a second set\n")
    assert files.cli("backup", "files") == ExitCode.OK
    return files


def _figures(overview: dict[str, Any]) -> dict[str, Any]:
    """What the overview says of the catalog (no ages, no free space)."""
    return {
        "totals": overview["totals"],
        "tiers": overview["tiers"],
        "verification": overview["verification"],
        "sources": [
            {
                "source": s["source"],
                "sets": s["sets"],
                "artifacts": s["artifacts"],
                "stored_bytes": s["stored_bytes"],
                "last_good": s["last_good"] and s["last_good"]["set_id"],
            }
            for s in overview["sources"]
        ],
    }


def _fresh_figures(env: FilesEnv) -> dict[str, Any]:
    with env.workspace() as workspace:  # its own Catalog: figures read, not kept
        report = collect_overview(workspace.settings, workspace.catalog, utc_now())
        validated = overview_route.Overview.model_validate(report)
    return _figures(validated.model_dump(mode="json"))


def _sql(env: FilesEnv, *statements: str, commit: bool = True) -> None:
    """Statements on a connection of this process (another writer than the server)."""
    conn = sqlite3.connect(env.root / "catalog.sqlite3", isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in statements:
            conn.execute(statement)
        conn.execute("COMMIT" if commit else "ROLLBACK")
    finally:
        conn.close()


def test_every_catalog_write_is_seen_by_the_kept_page_and_overview(env: FilesEnv) -> None:
    with env.workspace() as workspace:
        newer, older = (s.id for s in workspace.catalog.list_backup_sets())
        artifact = workspace.catalog.artifacts_of(older)[0]

    def write_with_catalog(action):
        def run() -> None:
            with env.workspace() as workspace:
                action(workspace.catalog)

        return run

    writes = {
        "verification recorded (verify)": lambda: env.cli("verify", newer),
        "a failed verification recorded": write_with_catalog(
            lambda c: c.record_verification(artifact.id, False, "damaged")
        ),
        "a set marked deleting": write_with_catalog(lambda c: c.mark_set_deleting(older)),
        "a copy state": write_with_catalog(
            lambda c: c.set_copy_state(artifact.id, "s3", "failed", "AccessDenied")
        ),
        "a raw write by another connection": lambda: _sql(
            env, f"UPDATE backup_sets SET tier = 'monthly' WHERE id = '{newer}'"
        ),
        "an upsert of a copy": lambda: _sql(
            env,
            "INSERT INTO copies (artifact_id, destination, state, updated_at)"
            f" VALUES ({artifact.id}, 's3', 'stored', '2026-12-06T00:00:00.000000Z')"
            " ON CONFLICT (artifact_id, destination) DO UPDATE SET state = excluded.state",
        ),
        "two writes, the second rolled back": lambda: (
            _sql(env, f"UPDATE backup_sets SET tier = 'weekly' WHERE id = '{newer}'"),
            _sql(env, f"UPDATE backup_sets SET tier = 'daily' WHERE id = '{newer}'", commit=False),
        ),
        "a job finishing a set (backup)": lambda: env.cli("backup", "files"),
        "catalog rebuild": lambda: env.cli("catalog", "rebuild"),
        "a set deleted": write_with_catalog(lambda c: c.delete_backup_set(older)),
    }
    with ApiServer(env.env_file) as server, server.client() as client:
        fresh_pages = 0

        def check(after: str) -> None:
            nonlocal fresh_pages
            kept = client.get(PAGE)
            fresh_pages += 1
            fresh = client.get(PAGE, params={"limit": 100 + fresh_pages})  # a page never kept
            assert kept.status_code == fresh.status_code == 200, kept.text
            assert kept.json() == fresh.json(), f"the kept page is stale after {after}"
            assert kept.headers["X-Total-Count"] == fresh.headers["X-Total-Count"], after
            overview = client.get(OVERVIEW)
            assert overview.status_code == 200, overview.text
            assert _figures(overview.json()) == _fresh_figures(env), f"overview after {after}"

        check("nothing")
        for what, write in writes.items():
            client.get(PAGE)  # kept now, under the marker before the write
            client.get(OVERVIEW)
            write()
            check(what)


def test_a_kept_page_is_never_served_without_the_token_nor_to_another_host(
    env: FilesEnv,
) -> None:
    with ApiServer(env.env_file) as server:
        with server.client() as client:
            first = client.get(PAGE, params={"limit": 1})
            assert first.status_code == 200 and "Link" in first.headers
            elsewhere = client.get(
                PAGE, params={"limit": 1}, headers={"Host": "elsewhere.example:1"}
            )
            again = client.get(PAGE, params={"limit": 1})
        with server.client(token=None) as anonymous:
            without = anonymous.get(PAGE, params={"limit": 1})
        with server.client(token="x" * 40) as wrong:
            wrong_token = wrong.get(PAGE, params={"limit": 1})
    assert without.status_code == 401 and wrong_token.status_code == 401
    assert "elsewhere.example:1" in elsewhere.headers["Link"]
    assert again.headers["Link"] == first.headers["Link"]
    assert "elsewhere.example" not in again.headers["Link"]


# --- requests arriving while a reading is under way, after a write -----------------------


class HeldReading:
    """Wraps a route's reading: counts the readings, holds the first (once read) until
    let go."""

    def __init__(self, real) -> None:
        self.real = real
        self.readings = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any) -> Any:
        self.readings += 1
        answer = self.real(*args)
        if self.readings == 1:
            self.entered.set()
            assert self.release.wait(WAIT), "the test never let the reading go"
        return answer


@pytest.fixture
def app_and_workspace(env: FilesEnv, isolated_env) -> Iterator[tuple[object, Workspace]]:
    settings = load_settings(environ={}, env_file=env.env_file)
    with Workspace.open(settings) as workspace:
        yield build_app(ApiContext(settings, env.env_file, workspace), BearerAuth(TOKEN)), workspace


def _reads_after_write(app, held: HeldReading, path: str, write, waiting) -> tuple:
    """The answer to a request sent once `write` (made while a reading of `path` was
    held) returned, and the held request's."""

    async def scenario() -> tuple:
        async with in_process_client(app) as client:
            first = asyncio.ensure_future(client.get(path))
            await asyncio.to_thread(held.entered.wait, WAIT)
            write()  # committed: a job finished, a client was told so
            second = asyncio.ensure_future(client.get(path))
            await until(waiting, "the second request to arrive")
            held.release.set()
            return await first, await second

    return asyncio.run(scenario())


def test_a_page_asked_for_after_a_write_shows_it_though_a_build_was_under_way(
    app_and_workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, workspace = app_and_workspace
    held = HeldReading(backups_route._page_answer)
    monkeypatch.setattr(backups_route, "_page_answer", held)
    marker = workspace.catalog.change_marker()

    def second_arrived() -> bool:
        cache = getattr(app.state, "backup_pages", None)
        # Waiting for the build under way, or building its own (a second reading).
        return cache is not None and (cache.waiting == 1 or held.readings == 2)

    first, second = _reads_after_write(
        app,
        held,
        PAGE,
        lambda: workspace.catalog.create_backup_set("files", tier="manual"),
        second_arrived,
    )
    assert workspace.catalog.change_marker() != marker
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Total-Count"] == "2"  # read before the write
    assert second.headers["X-Total-Count"] == "3", "a page read before the write was served"


def test_an_overview_asked_for_after_a_write_shows_it_though_a_reading_was_under_way(
    app_and_workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, workspace = app_and_workspace
    held = HeldReading(overview_route.read_overview)
    monkeypatch.setattr(overview_route, "read_overview", held)

    def second_arrived() -> bool:
        run = getattr(app.state, "overview_run", None)
        return run is not None and (run.waiting == 2 or held.readings == 2)

    first, second = _reads_after_write(
        app,
        held,
        OVERVIEW,
        lambda: workspace.catalog.create_backup_set("files", tier="manual"),
        second_arrived,
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["totals"]["sets"] == 2  # read before the write
    assert second.json()["totals"]["sets"] == 3, "an overview read before the write was served"


# --- the download's checked files ------------------------------------------------------


def _secrets_sets(env: FilesEnv, count: int) -> list[tuple[str, Path]]:
    """`count` secrets sets (one stored file each, of one size), newest first."""
    secrets = env.root / "app.env"
    env.set(BACKUP_SECRET_FILES=str(secrets))
    made = []
    for number in range(count):
        secrets.write_text(f"API_TOKEN=token-{number:04d}\n")
        assert env.cli("backup", "secrets") == ExitCode.OK
        with env.workspace() as workspace:
            backup = workspace.catalog.list_backup_sets(kind="secrets")[0]
            (artifact,) = workspace.catalog.artifacts_of(backup.id)
        made.append((backup.id, env.repo / artifact.relpath))
    return made


def _settled(paths: list[Path]) -> None:
    """Wait until every file's ctime is old enough for a download hashing it to remember
    it (checked_files.SETTLE_NS), on the wall clock ctime is set from."""
    ready = max(p.stat().st_ctime_ns for p in paths) + SETTLE_NS + 50_000_000
    while time.time_ns() < ready:
        time.sleep((ready - time.time_ns()) / 1e9)


def _cut_short(client: httpx.Client, url: str) -> bool:
    """True when the server ended the body before its Content-Length."""
    try:
        with client.stream("GET", url) as answer:
            assert answer.status_code == 200, answer.read()
            for _ in answer.iter_raw():
                pass
    except httpx.RemoteProtocolError:
        return True
    return False


def _replace_by_rename(path: Path, data: bytes) -> None:
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def _truncate_and_extend(path: Path, data: bytes) -> None:
    with open(path, "r+b") as file:
        file.truncate(0)
        file.write(data)  # the same size again, other bytes


def test_a_remembered_file_changed_in_any_way_is_hashed_again(env: FilesEnv) -> None:
    made = _secrets_sets(env, 3)
    originals = {set_id: path.read_bytes() for set_id, path in made}
    _settled([path for _, path in made])
    (by_rename, by_truncate, by_catalog) = made
    with ApiServer(env.env_file) as server, server.client() as client:
        for set_id, _ in made:  # hashed whole, matched: remembered
            assert client.get(f"{PAGE}/{set_id}/download").content == originals[set_id]
        for set_id, _ in made:
            assert client.get(f"{PAGE}/{set_id}/download").content == originals[set_id]
        assert _logged(server, UNHASHED, 3) == 3  # the repeat downloads were not hashed

        other = bytes(b ^ 0x01 for b in originals[by_rename[0]])
        _replace_by_rename(by_rename[1], other)  # a new inode, the same size
        assert _cut_short(client, f"{PAGE}/{by_rename[0]}/download")

        other = bytes(b ^ 0x01 for b in originals[by_truncate[0]])
        _truncate_and_extend(by_truncate[1], other)
        assert _cut_short(client, f"{PAGE}/{by_truncate[0]}/download")

        # The same relpath with another checksum in the catalog (a rekey re-stores it):
        # the file is no longer the catalog's, however unchanged.
        _sql(env, f"UPDATE artifacts SET checksum = '{'0' * 64}' WHERE set_id = '{by_catalog[0]}'")
        assert _cut_short(client, f"{PAGE}/{by_catalog[0]}/download")
        assert _logged(server, UNHASHED, 3) == 3


def _logged(server: ApiServer, text: str, count: int) -> int:
    deadline = time.monotonic() + WAIT
    while "".join(server.output).count(text) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return "".join(server.output).count(text)


@pytest.fixture
def shm_root() -> Iterator[Path]:
    """A folder on tmpfs, where a dirty page is never written back (so a write through a
    shared mapping of it never moves ctime, whatever the timing)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm (tmpfs)")
    root = Path(tempfile.mkdtemp(prefix="jarvis-cache-", dir=shm))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_file_written_through_a_shared_mapping_is_never_sent_unhashed(shm_root: Path) -> None:
    env = make_files_env(shm_root)
    env.set(JARVIS_API_TOKEN=TOKEN)
    ((set_id, path),) = _secrets_sets(env, 1)
    original = path.read_bytes()
    url = f"{PAGE}/{set_id}/download"
    fd = os.open(path, os.O_RDWR)
    mapped = mmap.mmap(fd, len(original))
    os.close(fd)
    try:
        mapped[100:101] = original[100:101]  # the page made dirty, its bytes unchanged
        _settled([path])
        with ApiServer(env.env_file) as server, server.client() as client:
            assert client.get(url).content == original  # hashed whole: it matched
            before = path.stat()
            mapped[100:101] = bytes([original[100] ^ 0x01])  # no fault: no time moves
            after = path.stat()
            assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
                before.st_ino,
                before.st_mtime_ns,
                before.st_ctime_ns,
            )
            assert _cut_short(client, url), "changed bytes were sent under the catalog's hash"
            assert UNHASHED not in "".join(server.output)
    finally:
        mapped.close()


def test_no_writer_is_true_only_while_nobody_has_the_file_open_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stored.enc"
    path.write_bytes(b"x" * 4096)
    reader = os.open(path, os.O_RDONLY)
    try:
        assert no_writer(reader)
        writer = os.open(path, os.O_WRONLY)
        assert not no_writer(reader)
        os.close(writer)
        assert no_writer(reader)
        with open(path, "r+b") as file, mmap.mmap(file.fileno(), 4096):
            pass
        assert no_writer(reader)  # the mapping is gone with its file
    finally:
        os.close(reader)


def test_a_request_that_read_an_older_marker_shares_a_newer_build() -> None:
    cache, built, release = PageCache(), [], threading.Event()

    def held() -> Answer:
        built.append("held")
        assert release.wait(WAIT), "the test never let the build go"
        return Answer(b"under 2", {})

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get, "/a", 2, held)
        deadline = time.monotonic() + WAIT
        while built != ["held"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        older = pool.submit(cache.get, "/a", 1, lambda: Answer(b"under 1", {}))
        while cache.waiting != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        release.set()
        assert first.result(WAIT).body == older.result(WAIT).body == b"under 2"
    assert cache.get("/a", 2, lambda: Answer(b"never", {})).body == b"under 2"
    # Kept under its very marker only (a counter can move back: a catalog copied back).
    assert cache.get("/a", 1, lambda: Answer(b"under 1", {})).body == b"under 1"
    assert cache.get("/a", 3, lambda: Answer(b"under 3", {})).body == b"under 3"
