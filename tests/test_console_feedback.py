"""What the console tells the operator, and where: toasts, the messages history, footers,
state readable without colour, pane keys inside a wizard, dry runs, the dashboard's alerts."""

from textual.widgets._toast import Toast

from jarvis_tui.app import make_app
from jarvis_tui.screens.base import PaneScreen
from jarvis_tui.screens.jobs import JobsScreen
from jarvis_tui.screens.message_history import MessagesScreen
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.backup_table import BackupTable
from tests.console_fixtures import screen_text, screen_words, settle, shows
from tests.support.files_env import make_files_env


def shown_toasts(app) -> list[str]:
    return [str(toast._notification.message) for toast in app.screen.query(Toast)]


async def test_toasts_are_capped_and_every_message_is_kept(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        for number in range(5):
            app.notify(f"message {number}", timeout=60)
        app.notify("the disk is full", title="Backup failed", severity="error", timeout=60)
        await settle(pilot)
        assert shown_toasts(app) == ["message 3", "message 4", "the disk is full"]
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, MessagesScreen)
        assert not shown_toasts(app), "toasts cover the dialog"
        words = screen_words(app)
        assert "Messages · 6 this session, newest first" in words
        # Newest first, each with the console clock's time and its severity in words.
        assert "09:30:00 error Backup failed: the disk is full" in words
        assert "09:30:00 info message 4" in words
        places = [words.index(f"message {number}") for number in range(4, -1, -1)]
        assert words.index("the disk is full") < places[0] and places == sorted(places)
        await pilot.press("escape")
        await settle(pilot)
        assert shown_toasts(app) == ["message 3", "message 4", "the disk is full"]


async def test_a_toast_waits_until_the_dialog_closes(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("b")  # the backup chooser, a dialog
        await settle(pilot)
        app.notify("verify finished", timeout=60)
        await settle(pilot)
        assert not shown_toasts(app), "a toast covers the dialog"
        assert "verify finished" not in screen_words(app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PaneScreen)
        assert shown_toasts(app) == ["verify finished"]
        assert [m.text for m in app.message_history.messages] == ["verify finished"]


async def test_messages_are_in_the_command_palette(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"messages")
        await settle(pilot)
        assert "Show the messages" in screen_words(app)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MessagesScreen)
        assert "No messages yet." in screen_words(app)


async def test_pane_keys_inside_a_wizard_say_so_and_never_hide_it(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("3", "R", "enter")  # the PostgreSQL wizard, opened from Jobs
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, RestoreWizard)
        await pilot.press("1")
        await settle(pilot)
        assert app.screen is wizard
        assert shown_toasts(app) == [
            "Restore PostgreSQL is open: finish it or close it first (Esc)."
        ]
        await pilot.press("escape", "1", "3")
        await settle(pilot)
        assert isinstance(app.screen, JobsScreen)


async def test_every_footer_keeps_restore_and_quit_at_80_columns(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        footers = {}
        for key in "12345":
            await pilot.press(key)
            await settle(pilot)
            footers[key] = screen_text(app).splitlines()[-1]
        await pilot.press("R", "enter")
        await settle(pilot)
        footers["wizard"] = screen_text(app).splitlines()[-1]
    for where, footer in footers.items():
        assert "? Help" in footer and ("R Restore" in footer or "r Restore" in footer), where
        assert "q Quit" in footer and "^p palette" in footer, (where, footer)
    assert "^n Next" in footers["wizard"] and "esc Leave wizard" in footers["wizard"]


async def test_recent_alerts_keep_when_and_severity_beside_a_long_message(seeded_console):
    cause = "could not write block 7 of relation base/16384/2619: No space left on device; " * 4
    with seeded_console.catalog() as catalog:
        catalog.record_alert("critical", "backup_failed", f"postgres backup failed: {cause}", {})
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        rows = [line for line in screen_text(app).splitlines() if "backup_failed" in line]
    assert len(rows) == 2, rows
    assert rows[0].split()[:3] == ["09:30:00", "critical", "backup_failed:"]
    assert rows[1].split()[:4] == ["2026-04-30", "14:30", "critical", "backup_failed:"]
    assert rows[0].rstrip().endswith("…")  # the message gives way, cut where it must be


async def test_a_dry_run_shows_its_summary_before_the_long_list(tmp_path, isolated_env):
    env = make_files_env(tmp_path / "env")
    for number in range(40):
        (env.data / f"track-{number:02}.mp3").write_bytes(b"x" * number)
    assert env.cli("backup", "files") == 0
    app = make_app(env.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("R", "down", "down", "enter")  # Restore files
        await settle(pilot)
        await pilot.press("enter")  # the newest backup
        await settle(pilot)
        await pilot.press("ctrl+n", "ctrl+n")  # a new folder, never overwrite: the dry run
        await settle(pilot)
        words = screen_words(app)
        # Without spaces: a long tmp path (pytest-xdist's popen-gwN) breaks the list mid-word.
        unwrapped = "".join(words.split())
        assert shows(app, "would create 41, overwrite 0, skip 0")
    assert "nothing was changed" in words
    # 40 files and their folder: the counts on screen without scrolling, above the list.
    assert unwrapped.index("wouldcreate41") < unwrapped.index("env/data/track-00.mp3")


def lines_with(app, *needles: str) -> list[str]:
    return [
        line.strip(" ▊▎")
        for line in screen_text(app).splitlines()
        if any(n in line for n in needles)
    ]


async def test_choices_and_the_cursor_read_without_colour(seeded_console, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = seeded_console.app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        await settle(pilot)
        await pilot.press("R", "enter")  # Restore PostgreSQL
        await settle(pilot)
        await pilot.press("enter")  # the newest backup: the Target step
        await settle(pilot)
        assert lines_with(app, "A new database", "came from") == [
            "▶ (•) A new database (nothing existing is touched)",
            "( ) The database it came from: jarvis",
        ]
        await pilot.press("down", "space")
        await settle(pilot)
        assert lines_with(app, "A new database", "came from") == [
            "( ) A new database (nothing existing is touched)",
            "▶ (•) The database it came from: jarvis",
        ]
        await pilot.press("ctrl+n", "space")  # Options: tick the first checkbox
        await settle(pilot)
        assert lines_with(app, "Drop existing", "Discard", "app.users") == [
            "▶ [x] Drop existing: replace a target that holds tables",
            "[ ] Discard the previous database after the swap",
            "[ ] app.users (300 rows)",
        ]
        await pilot.press("escape", "2")
        await settle(pilot)
        table = app.screen.query_one(BackupTable)
        assert any(segment.style and segment.style.reverse for segment in table.render_line(1))
        assert not any(segment.style and segment.style.reverse for segment in table.render_line(2))


async def test_notifications_mask_secrets_escape_controls_and_the_history_is_bounded(
    console_env,
):
    """An error echoing a connection string or the configured key is masked on screen and in
    the history, a file name's ESC sequence is shown escaped (Textual passed it to the
    terminal: retitled or cleared it); a notification storm (a job failing in a loop) keeps
    the console bounded: the history keeps the newest KEPT_MESSAGES, Messages draws the
    newest SHOWN_MESSAGES."""
    from jarvis_tui.message_history import KEPT_MESSAGES, MAX_TOASTS
    from jarvis_tui.screens.message_history import SHOWN_MESSAGES
    from tests.console_fixtures import KEY

    app = console_env.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        app.notify(
            f"cannot connect to postgresql://jarvis:Hunter2pw@db/jarvis with {KEY}",
            title=f"key {KEY.upper()}",
            severity="error",
            timeout=60,
        )
        await settle(pilot)
        (kept,) = app.message_history.messages
        assert kept.text == "cannot connect to postgresql://jarvis:****@db/jarvis with ****"
        assert kept.title == "key ****"
        words = screen_words(app)
        assert "Hunter2pw" not in words and KEY[:16] not in words and "****@db" in words
        app.notify("cannot read evil\x1b]2;owned\x07.txt\nnext line", timeout=60)
        await settle(pilot)
        assert app.message_history.messages[-1].text == (
            "cannot read evil\\x1b]2;owned\\x07.txt\nnext line"
        )
        assert not any("\x1b" in str(toast.render()) for toast in app.screen.query(Toast))
        await pilot.press("n")
        await settle(pilot)
        for number in range(KEPT_MESSAGES + 20):
            app.notify(f"storm {number}", timeout=60)
        await settle(pilot)
        assert len(app._held_toasts) == MAX_TOASTS  # only what shows when Messages closes
        assert len(app.message_history.messages) == KEPT_MESSAGES
        assert app.message_history.messages[0].text == "storm 20"
        words = screen_words(app)
        total = KEPT_MESSAGES + 22
        assert f"Messages · {total} this session, newest first" in words
        assert f"(the newest {SHOWN_MESSAGES} shown)" in words
        assert f"storm {KEPT_MESSAGES + 19}" in words
        assert f"storm {KEPT_MESSAGES + 19 - SHOWN_MESSAGES} " not in words + " "
        await pilot.press("escape")
        await settle(pilot)
        assert shown_toasts(app) == [f"storm {KEPT_MESSAGES + n}" for n in (17, 18, 19)]
