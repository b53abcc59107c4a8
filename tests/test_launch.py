"""The executable's fast paths (jarvis_tui/launch.py): wal-push and wal-fetch answered from
the WAL workers' results without importing the program, and everything else left to it."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from engines.pitr.wal_spools import take_prefetched
from engines.pitr.wal_worker import hold_lock
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
    lock = hold_lock(pg_wal / "jarvis-fetch")  # as the fetch worker holds its folder
    try:
        assert answered_at_once(["wal-fetch", SEGMENT, str(dest)])
        assert dest.read_bytes() == b"wal"
        assert not (pg_wal / "jarvis-fetch" / SEGMENT).exists()
        assert not answered_at_once(["wal-fetch", "000000010000000000000004", str(dest)])
    finally:
        os.close(lock)


def test_a_segment_without_its_worker_is_left_to_the_program(tmp_path: Path) -> None:
    """Written without fsync, so what a killed worker or a crash left is never used."""
    pg_wal = _pg_wal(tmp_path)
    (pg_wal / "jarvis-fetch" / SEGMENT).write_bytes(b"wal")
    (pg_wal / "jarvis-fetch" / f".{SEGMENT}.part").write_bytes(b"w")
    assert not answered_at_once(["wal-fetch", SEGMENT, str(pg_wal / "RECOVERYXLOG")])
    assert (pg_wal / "jarvis-fetch" / SEGMENT).exists()


def test_a_segment_on_its_way_is_waited_for(tmp_path: Path) -> None:
    folder = _pg_wal(tmp_path) / "jarvis-fetch"
    part = folder / f".{SEGMENT}.part"
    part.write_bytes(b"wal")
    lock = hold_lock(folder)
    finisher = threading.Thread(target=lambda: (time.sleep(0.2), part.rename(folder / SEGMENT)))
    try:
        finisher.start()
        dest = folder.parent / "RECOVERYXLOG"
        assert take_prefetched(SEGMENT, dest)
        assert dest.read_bytes() == b"wal"
        # Nothing on its way: no wait.
        assert not take_prefetched("000000010000000000000004", dest)
    finally:
        finisher.join()
        os.close(lock)


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
