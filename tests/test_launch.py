"""The executable's fast paths (jarvis_tui/launch.py): wal-push and wal-fetch answered from
the WAL workers' results without importing the program, and everything else left to it."""

import subprocess
import sys
from pathlib import Path

from jarvis_tui.launch import answered_at_once

SEGMENT = "000000010000000000000003"


def _pg_wal(tmp_path: Path) -> Path:
    pg_wal = tmp_path / "pg_wal"
    (pg_wal / "jarvis-push").mkdir(parents=True)
    (pg_wal / "jarvis-fetch").mkdir()
    return pg_wal


def test_an_acknowledged_push_is_answered_once(tmp_path: Path) -> None:
    pg_wal = _pg_wal(tmp_path)
    (pg_wal / "jarvis-push" / f"{SEGMENT}.ok").touch()
    words = ["--env-file", "x.env", "wal-push", str(pg_wal / SEGMENT)]
    assert answered_at_once(words)
    assert not answered_at_once(words)  # the mark answers one call only
    assert not (pg_wal / "jarvis-push" / f"{SEGMENT}.ok").exists()


def test_an_error_mark_or_another_name_is_not_an_answer(tmp_path: Path) -> None:
    pg_wal = _pg_wal(tmp_path)
    (pg_wal / "jarvis-push" / f"{SEGMENT}.error").write_text("no space left")
    (pg_wal / "jarvis-push" / "000000010000000000000004.ok").touch()
    assert not answered_at_once(["wal-push", str(pg_wal / SEGMENT)])
    assert (pg_wal / "jarvis-push" / f"{SEGMENT}.error").exists()


def test_a_prefetched_segment_is_moved_into_place(tmp_path: Path) -> None:
    pg_wal = _pg_wal(tmp_path)
    (pg_wal / "jarvis-fetch" / SEGMENT).write_bytes(b"wal")
    dest = pg_wal / "RECOVERYXLOG"
    assert answered_at_once(["wal-fetch", SEGMENT, str(dest)])
    assert dest.read_bytes() == b"wal"
    assert not (pg_wal / "jarvis-fetch" / SEGMENT).exists()
    assert not answered_at_once(["wal-fetch", "000000010000000000000004", str(dest)])


def test_other_command_lines_go_to_the_program(tmp_path: Path) -> None:
    pg_wal = _pg_wal(tmp_path)
    (pg_wal / "jarvis-fetch" / SEGMENT).write_bytes(b"wal")
    dest = str(pg_wal / "RECOVERYXLOG")
    for words in (
        [],
        ["status"],
        ["wal-fetch", "--help", SEGMENT, dest],
        ["wal-fetch", SEGMENT, dest, "extra"],
        ["--browse", "s3:x", "wal-fetch", SEGMENT, dest],
    ):
        assert not answered_at_once(words), words
    assert (pg_wal / "jarvis-fetch" / SEGMENT).exists()


def test_the_executable_answers_without_importing_the_program(tmp_path: Path) -> None:
    pg_wal = _pg_wal(tmp_path)
    (pg_wal / "jarvis-push" / f"{SEGMENT}.ok").touch()
    probe = (
        "import sys; from jarvis_tui.launch import main; sys.argv = ['jarvis-tui', 'wal-push', "
        f"{str(pg_wal / SEGMENT)!r}]; code = main(); "
        "print(code, 'jarvis_tui.cli' in sys.modules, 'engines.config' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["0", "False", "False"]
