"""The Jobs pane at 80 columns: it follows the newest job, tells the truth about progress,
and wraps log lines without losing characters."""

import asyncio
import os
import signal

from textual.widgets import DataTable, RichLog

from engines.actions.verbs import Request, run_verb
from engines.jobs import JobProgressed
from jarvis_tui.app import make_app
from jarvis_tui.job_process import ActionSpec, run_in_process
from jarvis_tui.jobs_watch import JOBS_SHOWN
from tests.console_fixtures import FIXED_NOW, FrozenCatalogClock, screen_words, settle, wait_until
from tests.support.files_env import make_files_env, random_text
from tests.support.s3_hosts import BUCKET, s3_settings

SIZE = (80, 24)


def add_jobs(env, count: int, status: str = "succeeded") -> list[int]:
    with env.catalog() as catalog:
        ids = []
        for number in range(count):
            job = catalog.create_job("verify", f"verify set {number}")
            if status != "running":
                catalog.finish_job(job.id, status)
            ids.append(job.id)
    return ids


def selected(app) -> int:
    table = app.screen.query_one("#jobs-table", DataTable)
    key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    return int(key.value)


async def test_the_list_follows_the_newest_job_and_goes_to_its_ends(console_env):
    ids = add_jobs(console_env, 30)
    app = console_env.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        table = app.screen.query_one("#jobs-table", DataTable)
        assert selected(app) == ids[-1] and f"Job {ids[-1]} verify set 29" in screen_words(app)
        await pilot.press("G")
        await settle(pilot)
        assert selected(app) == ids[0] and table.scroll_y > 0
        assert f"Job {ids[0]} verify set 0" in screen_words(app)
        await pilot.resize_terminal(100, 24)  # the columns are laid out again
        await settle(pilot)
        assert selected(app) == ids[0]
        await pilot.resize_terminal(*SIZE)
        await settle(pilot)
        await pilot.press("g")
        assert selected(app) == ids[-1]
        await pilot.press("end")
        assert selected(app) == ids[0]
        await pilot.press("home")
        assert selected(app) == ids[-1]
        await pilot.press("l", "G")  # from the log too
        assert selected(app) == ids[0]
        await pilot.press("g")
        assert selected(app) == ids[-1]

        await pilot.press("G")  # reading the oldest job when a new one starts
        (started,) = add_jobs(console_env, 1, status="running")
        await pilot.press("f5")
        await settle(pilot)
        assert selected(app) == started and table.scroll_y == 0
        assert f"Job {started} verify set 0" in screen_words(app)
        assert f"{started} verify set 0 running" in screen_words(app)  # its row is in view


async def test_many_jobs_keep_the_newest_selected(console_env):
    add_jobs(console_env, JOBS_SHOWN + 5)
    app = console_env.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        for _ in range(3):
            (newest,) = add_jobs(console_env, 1, status="running")
            await pilot.press("f5")
            await settle(pilot)
            assert selected(app) == newest
            assert f"{newest} verify set 0 running" in screen_words(app)


async def test_log_lines_wrap_at_80_columns_without_losing_characters(console_env, monkeypatch):
    FrozenCatalogClock(monkeypatch, FIXED_NOW)
    messages = [f"part {n}: {'payload' * (n % 9)} compressing with gzip level 9" for n in range(40)]
    messages.append("redis: 204 keys written, every one of them read back and compared")
    with console_env.catalog() as catalog:
        job = catalog.create_job("backup", "backup full")
        for message in messages:
            catalog.add_job_event(job.id, "info", message)
        catalog.finish_job(job.id, "succeeded")
    app = console_env.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        log = app.screen.query_one("#job-log", RichLog)
        assert len(log.lines) > log.scrollable_content_region.height  # it scrolls
        for size in ((120, 24), SIZE):  # wrapped again at each width
            await pilot.resize_terminal(*size)
            await settle(pilot)
            shown = log.scrollable_content_region.width
            assert all(len(line.text.rstrip()) <= shown for line in log.lines)
        joined = " ".join(line.text.strip() for line in log.lines)
        assert all(message in joined for message in messages)
        # What the log draws in view, its scrollbar aside: the last lines, whole.
        drawn = [log.render_line(y).text for y in range(log.scrollable_content_region.height)]
        drawn_words = " ".join(" ".join(drawn).split())
        assert messages[-2] in drawn_words and drawn_words.endswith(messages[-1])


def add_job(env, description: str, done: int, total: int | None, unit: str, status: str) -> int:
    with env.catalog() as catalog:
        job = catalog.create_job("backup", description)
        catalog.update_job_progress(job.id, done, total, unit)
        if status != "running":
            catalog.finish_job(
                job.id, status, "cancelled by request" if status == "cancelled" else None
            )
    return job.id


def row_words(app, job_id: int) -> str:
    table = app.screen.query_one("#jobs-table", DataTable)
    return " ".join(str(cell) for cell in table.get_row(str(job_id)))


async def test_progress_tells_the_truth(console_env, monkeypatch):
    FrozenCatalogClock(monkeypatch, FIXED_NOW)
    # The dump's size was an estimate: the archive came out smaller.
    estimated = add_job(console_env, "backup postgres", 40, 100, "bytes", "succeeded")
    cancelled = add_job(console_env, "backup files", 100, 100, "bytes", "cancelled")
    failed = add_job(console_env, "backup redis", 30, 100, "keys", "failed")
    running = add_job(console_env, "backup full", 1, 3, "steps", "running")
    app = console_env.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        assert row_words(app, estimated).startswith(f"{estimated} backup postgres succeeded ")
        assert "100%" in row_words(app, estimated)
        cancelled_row = row_words(app, cancelled)
        assert "cancelled cancelled" in cancelled_row
        assert "100%" not in cancelled_row and "failed" not in cancelled_row
        assert " 30%" in row_words(app, failed)
        assert row_words(app, running).endswith(" -")  # no "parts/s"
        assert "Job 4 backup full · running · 1 of 3 steps" in screen_words(app)
        assert "parts/s" not in screen_words(app)


async def test_backup_full_reports_its_progress_in_steps_only(console_env):
    uploads = console_env.cwd / "data" / "uploads"
    for number in range(3):
        (uploads / f"photo{number}.jpg").write_bytes(bytes(range(256)) * 64)
    updates: list[JobProgressed] = []

    def progressed(update) -> None:
        if isinstance(update, JobProgressed):
            updates.append(update)

    spec = ActionSpec("backup-full", Request(kind="full"))
    outcome = await asyncio.to_thread(run_in_process, console_env.env_file, spec, progressed)
    assert outcome.error is None, outcome.error
    assert updates and {u.unit for u in updates} == {"steps"}
    assert (updates[-1].done, updates[-1].total) == (updates[-1].total, updates[-1].total)
    app = console_env.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        (job,) = app.jobs
        assert (job.progress_unit, job.progress_done) == ("steps", job.progress_total)
        row = row_words(app, job.id)
        assert "backup full succeeded" in row and "100%" in row and row.endswith(" -")


async def test_the_wizards_logs_wrap_at_80_columns_too():
    """The restore wizards' run log and dry-run report are the same WrappingLog."""
    from textual.app import App

    from jarvis_tui.widgets.wrapping_log import WrappingLog

    line = "redis: restored into db 0 of redis://127.0.0.1:6379: 204 keys, every one compared"

    class OneLog(App):
        def compose(self):
            yield WrappingLog(id="run-log")

    app = OneLog()
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(WrappingLog)
        for _ in range(40):
            log.write(line)
        await pilot.pause()
        shown = log.scrollable_content_region.width
        assert shown < SIZE[0] and all(len(s.text.rstrip()) <= shown for s in log.lines)
        assert " ".join(" ".join(s.text for s in log.lines).split()).count(line) == 40


async def test_a_backup_cancelled_here_is_said_cancelled_not_failed(tmp_path, isolated_env):
    env = make_files_env(tmp_path / "env")
    env.set(BACKUP_COMPRESSION="gzip")
    for number in range(32):  # seconds of gzip work: the cancel lands in the middle
        (env.data / f"part{number:02d}.txt").write_text(os.urandom(1 << 19).hex())
    app = make_app(env.env_file, poll_seconds=0.1, host_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("3")
        app.runner.backup("files")
        await wait_until(pilot, lambda: any(not j.finished for j in app.jobs))
        (job,) = app.jobs
        os.kill(job.pid, signal.SIGSTOP)  # held still, so it surely has work left
        try:
            await wait_until(pilot, lambda: selected(app) == job.id)
            await pilot.press("c")
            await pilot.click("#yes")
            await wait_until(pilot, lambda: "cancel requested" in screen_words(app))
        finally:
            os.kill(job.pid, signal.SIGCONT)
        await wait_until(pilot, lambda: "files backup cancelled" in screen_words(app), 60)
        await wait_until(pilot, lambda: app.jobs[0].finished)
        await settle(pilot)
        shown = screen_words(app)
        assert app.jobs[0].status == "cancelled"
        assert "cancelled cancelled" in row_words(app, job.id)
        assert "backup failed" not in shown and "100%" not in row_words(app, job.id)


def test_backup_full_counts_the_off_site_copy_as_its_last_step(tmp_path, isolated_env, s3_server):
    """Not 100 % while the copy to S3 still runs: the copy is one more step."""
    env = make_files_env(tmp_path / "files")
    (env.data / "notes.txt").write_bytes(random_text(200_000, 1))
    env.set(**s3_settings(s3_server))
    s3_server.create_bucket(BUCKET)
    seen: list[JobProgressed] = []
    with env.workspace() as workspace:
        report = run_verb(workspace, "backup-full", Request(kind="full"), listeners=(seen.append,))
        (job,) = workspace.catalog.list_jobs()
    progressed = [(u.done, u.total, u.unit) for u in seen if isinstance(u, JobProgressed)]
    parts = len([p for p in report.parts if p.state != "skipped"])
    assert {unit for _, _, unit in progressed} == {"steps"}
    assert progressed[0] == (0, parts + 1, "steps")
    assert (parts, parts + 1, "steps") in progressed  # every part done, the copy still to go
    assert progressed[-1] == (parts + 1, parts + 1, "steps")
    assert (job.progress_done, job.progress_total) == (parts + 1, parts + 1)
