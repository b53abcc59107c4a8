"""The CLI's tables and progress (rich): plain text when piped, drawn on a terminal.

The CLI runs in its own process; the terminal is a real pseudo-terminal (pty).
"""

import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.progress_line import PLAIN_EVERY_S, PlainProgress
from tests.support.files_env import REPO_ROOT, FilesEnv, child_env, make_files_env
from tests.support.processes import interruptible

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FINAL_PLAIN_LINE = re.compile(
    r"backup files: 100%, \d+(\.\d)? (B|KiB|MiB) in [0-9. a-z]+ \(\d+(\.\d)? (B|KiB|MiB|GiB)/s\)"
)


@pytest.fixture
def files_env(tmp_path, isolated_env) -> FilesEnv:
    env = make_files_env(tmp_path / "env")
    for number in range(4):
        (env.data / f"part{number}.bin").write_bytes(os.urandom(256 << 10))
    return env


def run_in_pty(
    argv: list[str],
    *,
    stdout_too: bool = False,
    interrupt_when: str | None = None,
    columns: int = 120,
) -> tuple[int, str, str]:
    """`argv` with stderr (and with `stdout_too`, stdout) on a pseudo-terminal `columns`
    wide, 30 lines high: its exit code, what the terminal received (control codes included)
    and the piped stdout. With `interrupt_when`, Ctrl-C (SIGINT) as soon as the terminal
    shows that text."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    environ = {**child_env(), "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "30"}
    environ.pop("NO_COLOR", None)
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=terminal if stdout_too else subprocess.PIPE,
        stderr=terminal,
        preexec_fn=interruptible,
    )
    os.close(terminal)
    received = b""
    deadline = time.monotonic() + 60
    interrupted = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
        if interrupt_when and not interrupted and interrupt_when in ANSI.sub("", received.decode()):
            # Held still while the signal lands, so it surely interrupts the job mid-way.
            process.send_signal(signal.SIGSTOP)
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGCONT)
            interrupted = True
    os.close(controller)
    out = process.stdout.read().decode() if process.stdout else ""
    code = process.wait(timeout=60)
    return code, received.decode(), out


def frames(received: str) -> list[str]:
    """What the terminal showed, redraw by redraw, without control codes."""
    return [text.strip() for text in re.split(r"[\r\n]", ANSI.sub("", received)) if text.strip()]


def test_piped_progress_is_plain_lines_and_ends_cleanly(files_env):
    done = files_env.cli_process("backup", "files")
    assert done.returncode == ExitCode.OK, done.stderr
    assert "\x1b" not in done.stdout + done.stderr and "\r" not in done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("backup files")]
    assert progress, done.stderr
    assert FINAL_PLAIN_LINE.fullmatch(progress[-1]), progress[-1]  # not '4.4 KiB/sss'
    assert "snapshot files_" in done.stdout  # the result stays on stdout


def test_plain_progress_writes_a_line_now_and_then_and_the_last_on_success():
    now = [100.0]
    stream = io.StringIO()
    line = PlainProgress("backup postgres", stream, clock=lambda: now[0])
    line.update(0, 10 << 10, "bytes")
    now[0] += PLAIN_EVERY_S / 2
    line.update(2 << 10, 10 << 10, "bytes")
    assert stream.getvalue() == ""  # not yet: one line per PLAIN_EVERY_S
    now[0] = 100.0 + 16
    line.update(4 << 10, 10 << 10, "bytes")
    now[0] = 100.0 + 20
    line.update(10 << 10, 10 << 10, "bytes")
    line.finish("succeeded")
    assert stream.getvalue().splitlines() == [
        "backup postgres: 40%, 4.0 KiB of 10.0 KiB, 256 B/s",
        "backup postgres: 100%, 10.0 KiB in 20.0 s (512 B/s)",
    ]

    counted = io.StringIO()
    keys = PlainProgress("restore redis", counted, clock=lambda: now[0])
    keys.update(50, None, "keys")
    now[0] += 2
    keys.finish("succeeded")
    assert counted.getvalue() == "restore redis: 50 keys in 2.0 s (25 keys/s)\n"

    parts = io.StringIO()
    full = PlainProgress("backup full", parts, clock=lambda: now[0])
    full.update(1, 3, "parts")
    now[0] += PLAIN_EVERY_S
    full.update(2, 3, "parts")
    full.finish("succeeded")
    assert parts.getvalue().splitlines() == [  # no 'parts/s': a count has no rate
        "backup full: 67%, 2 of 3 parts",
        f"backup full: 100%, 3 parts in {PLAIN_EVERY_S:.1f} s",
    ]

    failed = io.StringIO()
    stopped = PlainProgress("verify", failed, clock=lambda: now[0])
    stopped.update(1, 2, "artifacts")
    stopped.finish("cancelled")  # the error line says why; no 100 % for a stopped job
    assert failed.getvalue() == ""


def test_on_a_terminal_progress_is_a_rich_bar_with_a_rate_ending_at_100(files_env):
    code, received, out = run_in_pty([*files_env.cli_argv(), "backup", "files"])
    assert code == ExitCode.OK, received
    assert "\x1b[" in received and "━" in received  # drawn by rich, not plain lines
    shown = [frame for frame in frames(received) if frame.startswith("backup files")]
    assert shown, received
    last = shown[-1]
    assert "100%" in last and re.search(r"\d (B|KiB|MiB|GiB)/s", last), last
    assert "1.0 MiB of 1.0 MiB" in last, last
    assert ANSI.sub("", received).endswith("\n")  # the bar ends on its own line
    assert "Traceback" not in received and "snapshot files_" in out


def test_ctrl_c_ends_the_bar_as_cancelled_with_exit_130(tmp_path, isolated_env):
    env = make_files_env(tmp_path / "env")
    env.set(BACKUP_COMPRESSION="gzip")
    for number in range(4):
        # Hex text compresses: gzip has real work, so the job is surely still running.
        (env.data / f"blob{number}.txt").write_text(os.urandom(1 << 20).hex())
    code, received, _ = run_in_pty(
        [*env.cli_argv(), "backup", "files"], interrupt_when="backup files"
    )
    assert code == ExitCode.CANCELLED, received
    shown = frames(received)
    assert "Traceback" not in received
    assert shown[-1] == "jarvis-tui: interrupted", repr(received[-400:])
    assert shown[-2].startswith("backup files (cancelled)") and "100%" not in shown[-2]


def test_tables_are_plain_when_piped_and_drawn_on_a_terminal(files_env):
    deep = files_env.root / ("a-rather-long-folder-name-" * 4)
    deep.mkdir()
    files_env.set(BACKUP_FILE_PATHS=f"{files_env.data},{deep}")
    piped = files_env.cli_process("config", "show")
    assert piped.returncode == ExitCode.OK, piped.stderr
    assert "\x1b" not in piped.stdout and "─" not in piped.stdout
    lines = piped.stdout.splitlines()
    header = next(number for number, line in enumerate(lines) if line.startswith("VARIABLE"))
    assert re.fullmatch(r"VARIABLE +VALUE +FROM", lines[header])
    assert set(lines[header + 1]) == {"-"}
    (paths,) = [line for line in lines if line.startswith("BACKUP_FILE_PATHS ")]
    assert str(deep) in paths and paths == paths.rstrip()  # one line, however long

    code, received, _ = run_in_pty([*files_env.cli_argv(), "config", "show"], stdout_too=True)
    assert code == ExitCode.OK, received
    assert "\x1b[1m" in received and "─" in received  # a bold header over a rule
    assert any(re.fullmatch(r"VARIABLE +VALUE +FROM", frame) for frame in frames(received))


def test_piped_tables_keep_their_columns(tmp_path, isolated_env, capsys):
    from jarvis_tui.output import print_table

    print_table(("CHECK", "STATE", "DETAIL"), [("repository writable", "FAIL", "[Errno 2] x")])
    print_table(("A", "B"), [(None, 1)])
    assert capsys.readouterr().out.splitlines() == [
        "CHECK                STATE  DETAIL",
        "-" * 39,
        "repository writable  FAIL   [Errno 2] x",  # not read as rich markup
        "A  B",
        "----",
        "-  1",
    ]


def test_control_characters_in_names_are_shown_escaped_never_sent(files_env, capsys):
    """A file name (anyone who may write into a backed-up folder picks it) holding ESC
    sequences (window title, colour) or a newline (a forged line) reaches the terminal
    escaped, in tables and in the diff alike; rich markup stays literal too."""
    from jarvis_tui.output import print_table

    not_utf8 = os.fsdecode(b"raw\x9b\xff.txt")  # 0x9b written raw is a CSI
    print_table(
        ("ID", "PATH"),
        [("[bold]s[/bold]", "a\x1b]0;owned\x07\x1b[2Jb\u202e"), ("t", not_utf8)],
    )
    assert capsys.readouterr().out.splitlines()[2:] == [
        "[bold]s[/bold]  a\\x1b]0;owned\\x07\\x1b[2Jb\\u202e",
        "t               raw\\x9b\\xff.txt",
    ]
    assert files_env.cli("backup", "files") == ExitCode.OK
    (files_env.data / "evil\x1b[31m\n+ forged.txt").write_text("x")
    assert files_env.cli("backup", "files") == ExitCode.OK
    with files_env.workspace() as workspace:
        first, second = sorted(s.id for s in workspace.catalog.list_backup_sets())
    capsys.readouterr()
    assert files_env.cli("diff", first, second) == ExitCode.OK
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert f"+ {str(files_env.data).lstrip('/')}/evil\\x1b[31m\\x0a+ forged.txt" in out.splitlines()


def test_narrow_terminals_fold_cells_never_cut_them(files_env):
    """At 20 columns every cell of `list` was '…'; at 70 its set id was cut short."""
    assert files_env.cli("backup", "files") == ExitCode.OK
    with files_env.workspace() as workspace:
        (set_id,) = [s.id for s in workspace.catalog.list_backup_sets()]
    for columns in (20, 70):
        code, received, _ = run_in_pty(
            [*files_env.cli_argv(), "list"], stdout_too=True, columns=columns
        )
        assert code == ExitCode.OK, received
        assert "…" not in received
        shown = frames(received)
        if columns == 20:  # not even the headers fit: plain lines the terminal wraps
            assert any(line.startswith(f"{set_id}  files") for line in shown), shown
        else:
            rows = shown[next(i for i, line in enumerate(shown) if line.startswith("─")) + 1 :]
            assert "".join(line.split()[0] for line in rows) == set_id, shown  # folded
