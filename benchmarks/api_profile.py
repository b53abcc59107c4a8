"""Where an API request's time goes: cProfile of the app in-process, on benchmarks/api.py's catalog.

    .venv/bin/python benchmarks/api_profile.py /api/backups
    .venv/bin/python benchmarks/api_profile.py --sets 2000 --requests 50 /api/backups/stats/overview

The app is `build_app` on the work folder's settings, called through httpx's
ASGITransport (no socket, no server process). FastAPI runs sync routes and dependencies
in a thread pool, where cProfile (one thread) would not see them; here they run inline
on the event loop's thread, so the profile holds the whole request. The catalog is kept
in benchmarks/.work/api-profile-<sets> between runs (delete it after changing the seeding).
"""

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.api import S3_SETTINGS, CopyRecorded  # noqa: E402
from benchmarks.api_catalog import build_catalog, write_env  # noqa: E402


async def _inline(func, *args, **kwargs):
    return func(*args, **kwargs)


async def profile(app, token: str, path: str, requests: int, lines: int, before) -> None:
    import httpx

    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        first = await c.get(path)
        if first.status_code != 200:
            raise SystemExit(f"GET {path}: {first.status_code} {first.text[:300]}")
        spent = 0.0
        for _ in range(requests):
            before()
            began = time.perf_counter()
            await c.get(path)
            spent += time.perf_counter() - began
        each = spent / requests
        print(
            f"GET {path}: {len(first.content):,} bytes, {each * 1000:.1f} ms a request unprofiled"
        )
        profiler = cProfile.Profile()
        for _ in range(requests):
            before()
            profiler.enable()
            await c.get(path)
            profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
        print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="e.g. /api/backups?source=postgres")
    parser.add_argument("--sets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--lines", type=int, default=40, help="of each profile listing")
    parser.add_argument(
        "--changed",
        action="store_true",
        help="change the catalog before each request (answers kept while it is unchanged)",
    )
    args = parser.parse_args()

    import fastapi.routing

    fastapi.routing.run_in_threadpool = _inline  # the sync route and its dependencies, inline

    from engines.config import load_settings
    from engines.workspace import Workspace
    from jarvis_tui.api.app import build_app
    from jarvis_tui.api.auth import BearerAuth
    from jarvis_tui.api.context import ApiContext
    from tests.support.api_server import TOKEN

    work = ROOT / "benchmarks" / ".work" / f"api-profile-{args.sets}"
    if not (work / "seeded").exists():
        build_catalog(work, args.sets)
        (work / "seeded").touch()
    env_file = write_env(work, JARVIS_API_TOKEN=TOKEN, **S3_SETTINGS)
    settings = load_settings(environ={}, env_file=env_file)
    with Workspace.open(settings) as workspace:
        app = build_app(ApiContext(settings, env_file, workspace), BearerAuth(TOKEN))
        before = CopyRecorded(settings.catalog_path) if args.changed else lambda: None
        asyncio.run(profile(app, TOKEN, args.path, args.requests, args.lines, before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
