"""`GET /api/backups/stats/overview`: requests arriving while the overview is being read
share that reading (jarvis_tui/api/shared_run.py), one reading at a time per app.

The app runs in-process (build_app through httpx's ASGITransport, sync dependencies in
the real thread pool); the reading is held still by an event around the real one, so
which requests arrive during it is decided by the test, not by timing.
"""

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.config import load_settings
from engines.workspace import Workspace
from jarvis_tui.api.app import build_app
from jarvis_tui.api.auth import BearerAuth
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.routes import overview as overview_route
from tests.support.api_server import TOKEN, in_process_client, until
from tests.support.files_env import make_files_env

PATH = "/api/backups/stats/overview"
WAIT = 60.0


class HeldReading:
    """Wraps the route's reading: counts the readings, holds each (once read) until let go."""

    def __init__(self) -> None:
        self.readings = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False
        self._real = overview_route.read_overview

    def __call__(self, context: ApiContext):
        self.readings += 1
        report = self._real(context)
        self.entered.set()
        assert self.release.wait(WAIT), "the test never let the reading go"
        if self.fail:
            raise RuntimeError("the reading broke")
        return report


@pytest.fixture
def app_and_workspace(tmp_path: Path, isolated_env) -> Iterator[tuple[object, Workspace]]:
    env = make_files_env(tmp_path / "files")
    (env.data / "a.txt").write_text("the overview counts this\n")
    env.set(JARVIS_API_TOKEN=TOKEN)
    assert env.cli("backup", "files") == 0
    settings = load_settings(environ={}, env_file=env.env_file)
    with Workspace.open(settings) as workspace:
        yield build_app(ApiContext(settings, env.env_file, workspace), BearerAuth(TOKEN)), workspace


def test_requests_arriving_during_a_reading_share_it_and_the_next_reads_again(
    app_and_workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, workspace = app_and_workspace
    held = HeldReading()
    monkeypatch.setattr(overview_route, "read_overview", held)

    async def scenario() -> None:
        async with in_process_client(app) as client:
            first = asyncio.ensure_future(client.get(PATH))
            await asyncio.to_thread(held.entered.wait, WAIT)
            # Requests arriving now, before any write, share the reading under way.
            same = [asyncio.ensure_future(client.get(PATH)) for _ in range(2)]
            await until(lambda: app.state.overview_run.waiting == 3, "three requests sharing")
            # The catalog changes while the reading runs (a backup's writes): the requests
            # arriving now wait for it and share the next reading, made after the write.
            workspace.catalog.create_backup_set("files", tier="manual")
            others = [asyncio.ensure_future(client.get(PATH)) for _ in range(5)]
            await until(lambda: app.state.overview_run.waiting == 8, "eight requests waiting")
            assert held.readings == 1
            held.release.set()
            answers = await asyncio.gather(first, *same)
            later = await asyncio.gather(*others)
            assert [a.status_code for a in (*answers, *later)] == [200] * 8
            assert len({a.content for a in answers}) == 1  # one reading, one moment
            assert len({a.content for a in later}) == 1
            assert held.readings == 2
            assert answers[0].json()["totals"]["sets"] == 1  # read before the new set
            assert later[0].json()["totals"]["sets"] == 2

            after = await client.get(PATH)  # none under way: a new reading
            assert after.status_code == 200 and held.readings == 3
            assert after.json()["totals"]["sets"] == 2

    asyncio.run(scenario())


def test_a_failed_reading_fails_its_sharers_and_the_next_request_reads_again(
    app_and_workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = app_and_workspace
    held = HeldReading()
    held.fail = True
    monkeypatch.setattr(overview_route, "read_overview", held)

    async def scenario() -> None:
        async with in_process_client(app) as client:
            first = asyncio.ensure_future(client.get(PATH))
            await asyncio.to_thread(held.entered.wait, WAIT)
            second = asyncio.ensure_future(client.get(PATH))
            await until(lambda: app.state.overview_run.waiting == 2, "two requests sharing")
            held.release.set()
            failed = await asyncio.gather(first, second)
            assert [a.status_code for a in failed] == [500, 500]
            assert all(a.json()["code"] == "internal" for a in failed), failed[0].text
            assert held.readings == 1
            held.fail = False
            again = await client.get(PATH)
            assert again.status_code == 200 and held.readings == 2

    asyncio.run(scenario())
