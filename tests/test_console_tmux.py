"""End to end: `jarvis-tui` in a real terminal (tmux), a backup started with keystrokes."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.pg_seed import PgCase

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None,
    reason="tmux is not installed: `apt-get install -y tmux` (scripts/test.sh installs it)",
)


class Terminal:
    """One tmux session on a private server socket, so no other tmux is touched."""

    def __init__(self, socket: Path, name: str = "console"):
        self.socket = socket
        self.name = name

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            [TMUX, "-S", str(self.socket), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def start(self, command: list[str], width: int = 100, height: int = 30) -> None:
        self.tmux(
            "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), *command
        )

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", self.name, key)
            time.sleep(0.3)  # a person's pace; Textual reads each key on its own

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in " ".join(shown.split()):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the terminal shows:\n{self.screen()}")

    def running(self) -> bool:
        return (
            subprocess.run(
                [TMUX, "-S", str(self.socket), "has-session", "-t", self.name], capture_output=True
            ).returncode
            == 0
        )

    def close(self) -> None:
        self.tmux("kill-server")


def console_command(env_file: Path) -> list[str]:
    script = Path(sys.executable).with_name("jarvis-tui")
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "jarvis_tui.cli"]
    return [*launcher, "--env-file", str(env_file)]


def test_backup_started_with_keystrokes_shows_up_on_screen(postgres_server, tmp_path, isolated_env):
    case = PgCase(postgres_server, tmp_path)
    terminal = Terminal(tmp_path / "tmux.sock")
    try:
        terminal.start(console_command(case.env_file))
        terminal.wait_for("none yet: press b")  # the dashboard, with no backup yet
        terminal.keys("b")
        terminal.wait_for("Back up now")
        terminal.keys("Down", "Enter")  # the first choice is everything; then postgres
        terminal.wait_for("Backup finished")
        terminal.keys("2")  # the catalog
        shown = terminal.wait_for("1 of 1 backups")
        assert "postgres_" in shown and "complete" in shown
        terminal.keys("q")
        deadline = time.monotonic() + 15
        while terminal.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not terminal.running(), "the console did not quit on q"
    finally:
        terminal.close()
        case.cleanup()
    with case.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "postgres")
        assert backup_set.status == "complete" and backup_set.tier == "manual"
