"""`CheckedFiles`: which fingerprints of checked files are kept, and for how long."""

import os
from pathlib import Path

from jarvis_tui.api.download.checked_files import SETTLE_NS, CheckedFiles, Fingerprint

NOW = 1_800_000_000 * 10**9  # a fixed read time (ns): the clock is an argument


def print_of(ctime_ns: int, inode: int = 7) -> Fingerprint:
    return Fingerprint(device=1, inode=inode, size=10, mtime_ns=5, ctime_ns=ctime_ns)


def test_a_settled_fingerprint_is_kept_and_only_its_exact_twin_matches() -> None:
    checked = CheckedFiles()
    old = print_of(NOW - SETTLE_NS)
    assert checked.remember((1, "a", "sum"), old, NOW)
    assert checked.unchanged((1, "a", "sum"), old)
    assert not checked.unchanged((1, "a", "sum"), print_of(NOW - SETTLE_NS + 1))  # ctime
    assert not checked.unchanged((1, "a", "sum"), print_of(NOW - SETTLE_NS, inode=8))
    assert not checked.unchanged((1, "a", "other sum"), old)  # the catalog says otherwise


def test_a_ctime_too_close_to_the_read_is_not_kept_and_forgets_the_old_one() -> None:
    checked = CheckedFiles()
    checked.remember((1, "a", "sum"), print_of(NOW - SETTLE_NS), NOW)
    recent = print_of(NOW - SETTLE_NS + 1)
    assert not checked.remember((1, "a", "sum"), recent, NOW)
    assert len(checked) == 0


def test_the_least_recently_used_go_first_past_capacity() -> None:
    checked = CheckedFiles(capacity=2)
    old = print_of(0)
    for number in (1, 2):
        checked.remember((number, "a", "sum"), old, NOW)
    assert checked.unchanged((1, "a", "sum"), old)  # used: 2 is now the oldest
    checked.remember((3, "a", "sum"), old, NOW)
    assert len(checked) == 2
    assert checked.unchanged((1, "a", "sum"), old) and checked.unchanged((3, "a", "sum"), old)
    assert not checked.unchanged((2, "a", "sum"), old)


def test_a_fingerprint_is_what_fstat_says_of_the_open_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        found = path.stat()
        assert Fingerprint.of(fd) == Fingerprint(
            found.st_dev, found.st_ino, 10, found.st_mtime_ns, found.st_ctime_ns
        )
    finally:
        os.close(fd)
