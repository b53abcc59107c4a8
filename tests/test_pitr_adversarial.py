"""Adversarial checks of the point-in-time recovery parts (issue #16): inputs an operator
mistypes or an attacker forges, each of which once gave a wrong answer."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engines.errors import JarvisError
from engines.pitr.archive_access import archive_command_problems
from engines.pitr.archiving import runs_wal_push
from engines.pitr.data_owner import refuse_unless_startable
from engines.pitr.restore_pitr import write_recovery
from engines.pitr.restore_target import parse_target
from engines.pitr.wal_reseal import reseal_wal
from engines.servers.process import free_port, unprivileged_account
from tests.support.postgres import PostgresServer
from tests.support.processes import interruptible, wait_until
from tests.test_pitr_archive import Archive, archive  # noqa: F401
from tests.test_pitr_restore import History, history  # noqa: F401
from tests.test_pitr_start import (
    python_path,
    restore_and_start,
    server_jarvis,
    server_pid,
    stopped_after,
)
from tests.test_pitr_wal_reseal import OLD, ROTATED, _key_ids
from tests.test_pitr_wal_reseal import _archive as reseal_archive


@pytest.mark.parametrize(
    "command",
    [
        "true jarvis-tui wal-push %p",
        "echo jarvis-tui wal-push %p",
        "sh -c 'exit 0' jarvis-tui wal-push %p",
        "rm -rf x; jarvis-tui wal-push %p",
        "false && jarvis-tui wal-push %p",
        "cp %p /elsewhere/%f || jarvis-tui wal-push %p",
        "jarvis-tui wal-push %p&",
        "jarvis-tui wal-push $(rm -rf x) %p",
        "jarvis-tui wal-push `rm -rf x` %p",
        "jarvis-tui wal-fetch wal-push %p",
        "jarvis-tui wal-push /tmp/other %p",
        "jarvis-tui --browse s3:other wal-push %p",
    ],
)
def test_a_command_that_does_not_run_only_our_wal_push_is_not_ours(command: str) -> None:
    """The scheduled base backup and the watch's window trust this: a command that echoes
    our words, or runs wal-push only after something else, archives nothing here."""
    assert runs_wal_push(command) is False


@pytest.mark.parametrize(
    "command",
    [
        "env PYTHONPATH=/a:/b /usr/bin/python3.11 -m jarvis_tui.launch --env-file /t/j.env "
        "wal-push %p",
        "jarvis-tui --env-file=/etc/jarvis.env wal-push %p",
        "PATH=/opt/bin jarvis-tui wal-push %p",
    ],
)
def test_our_wal_push_however_started_is_ours(command: str) -> None:
    assert runs_wal_push(command) is True


@pytest.mark.parametrize(
    "name", ["before\\upgrade", "it's\\'done", "trailing\\", "C:\\temp\\tables"]
)
def test_a_restore_point_name_with_backslashes_reaches_postgresql_unchanged(
    postgres_server: PostgresServer, tmp_path: Path, name: str
) -> None:
    """PostgreSQL reads backslash escapes in a configuration string ('\\u' is 'u'): the name
    written unescaped was another name (recovery then ran past it to the end of the WAL)
    or no string at all. Read back by the server itself through pg_file_settings."""
    target = parse_target("name", name, "pause", "jarvis-tui wal-fetch %f %p")
    write_recovery(tmp_path, target)
    auto = postgres_server.data_dir / "postgresql.auto.conf"
    kept = auto.read_text()
    try:
        with open(auto, "w") as handle:  # keeps the server account's file
            handle.write((tmp_path / "postgresql.auto.conf").read_text())
        rows = postgres_server.execute(  # a syntax error is a row without a name
            "SELECT name, setting FROM pg_file_settings "
            "WHERE name = 'recovery_target_name' OR name IS NULL"
        )
    finally:
        with open(auto, "w") as handle:
            handle.write(kept)
    assert rows == [("recovery_target_name", name)]


@pytest.mark.parametrize("name", ["two\nlines", "carriage\rreturn"])
def test_a_restore_point_name_postgresql_cannot_read_from_its_configuration_is_refused(
    name: str,
) -> None:
    with pytest.raises(JarvisError, match="restore point") as refused:
        parse_target("name", name, "pause", "jarvis-tui wal-fetch %f %p")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("xid", ["²", "١٢٣", "99999999999999999999999"])
def test_a_transaction_id_postgresql_would_not_take_is_refused(xid: str) -> None:
    with pytest.raises(JarvisError, match="target transaction"):
        parse_target("xid", xid, "pause", "jarvis-tui wal-fetch %f %p")


def test_an_lsn_is_written_as_postgresql_takes_it() -> None:
    assert parse_target("lsn", " 0/3000148 ", "pause", "x").value == "0/3000148"


def test_a_data_folder_named_through_a_symbolic_link_is_refused_before_anything_is_laid_out(
    history: History,  # noqa: F811
) -> None:
    """A link to an empty folder (or to nowhere) got the whole base backup extracted, then
    'alink -> alink: part of this path is a file, not a folder'."""
    arc = history.archive
    empty = arc.root / "link-target"
    empty.mkdir()
    for name, points_to in (("to-empty", empty), ("to-nowhere", arc.root / "nowhere")):
        link = arc.root / name
        link.symlink_to(points_to)
        result = restore_and_start(arc, link, free_port(), "--target-time", history.moments[1])
        err = result.stderr.strip()
        assert result.returncode == 1, err
        assert err == (
            f"jarvis-tui: {link}: a symbolic link (to {points_to}); nothing was changed. Name "
            "the empty (or new) data folder itself"
        )
    assert list(empty.iterdir()) == [] and not (arc.root / "nowhere").exists()


def test_ctrl_c_while_waiting_for_the_target_names_the_server_left_running(
    history: History,  # noqa: F811
) -> None:
    """The server runs detached, so Ctrl-C of the wait left it recovering on its own behind
    a bare 'jarvis-tui: interrupted'."""
    arc, port = history.archive, free_port()
    folder = arc.root / "interrupted"
    gate = arc.root / "wal-fetch-held"
    gate.touch()  # recovery cannot reach the target while it exists: the wait is certain
    try:
        with stopped_after(folder):
            waiting = subprocess.Popen(
                [*_jarvis_held_at(arc, gate), "--env-file", str(arc.env_file), "restore",
                 "postgres", "--pitr", "--target-time", history.moments[2], "--target-action",
                 "pause", "--pgdata", str(folder), "--start", "--port", str(port)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=arc.root,
                preexec_fn=interruptible,
            )  # fmt: skip
            wait_until(lambda: server_pid(folder) is not None, timeout=120, what="the server")
            waiting.send_signal(signal.SIGINT)
            _, err = waiting.communicate(timeout=60)
            pid = server_pid(folder)
            gate.unlink()
            _assert_said_left_running(waiting.returncode, err, folder, pid, port)
    finally:
        gate.unlink(missing_ok=True)


def _jarvis_held_at(arc: Archive, gate: Path) -> list[str]:
    """A restore whose restore_command (the jarvis-tui beside the interpreter that runs the
    restore) waits while `gate` exists, then runs the jarvis-tui PostgreSQL's account can."""
    held = arc.root / "held-bin"
    if not held.exists():
        held.mkdir()
        (held / "python3").symlink_to(Path(sys.executable).resolve())
        script = held / "jarvis-tui"
        script.write_text(
            f"#!/bin/sh\nwhile [ -e {gate} ]; do sleep 0.1; done\n"
            f'exec {server_jarvis(arc)} "$@"\n'
        )
        script.chmod(0o755)
    return ["env", python_path(), str(held / "python3"), "-m", "jarvis_tui.launch"]


def _assert_said_left_running(
    returncode: int, err: str, folder: Path, pid: int | None, port: int
) -> None:
    assert returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("jarvis-tui: interrupted while waiting for the moment ")
    assert f"the server keeps running and recovering (pid {pid}, port {port})" in lines[0]
    assert f"-D {folder} stop -m fast` as " in lines[0]
    assert f"its log: {folder}/log/jarvis-recovery.log" in lines[0]


def _archive_history(arc: Archive, timeline: int, text: str) -> Path:
    """A .history file archived as the server's archiver would (wal-push of pg_wal's file);
    the repository object it made."""
    made = arc.pg.data_dir / "pg_wal" / f"{timeline:08X}.history"
    made.write_text(text)
    os.chown(made, arc.pg.account.uid, arc.pg.account.gid)
    try:
        pushed = arc.cli("wal-push", str(made))
        assert pushed.returncode == 0, pushed.stderr
    finally:
        made.unlink()
    return next((arc.repository / "wal").glob(f"*/{made.name}.*"))


def _restore_line(history: History, folder: Path, *words: str) -> tuple[int, str]:  # noqa: F811
    result = history.archive.cli(
        "restore", "postgres", "--pitr", "--target-time", history.moments[1], *words,
        "--pgdata", str(folder), "--dry-run",
    )  # fmt: skip
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    return result.returncode, err


def test_forged_history_files_are_named_never_followed(history: History, tmp_path: Path) -> None:  # noqa: F811
    """A renamed history file is caught by its sealed name. One whose ancestors are not each
    older than the next (PostgreSQL refuses it, but only at recovery) gave 'no PostgreSQL
    base backup yet' with two in the catalog; so did a sound timeline 2 branched before
    every base backup, where --target-timeline 1 is the way."""
    arc = history.archive
    made: list[Path] = []
    try:
        for parents in ("2\t0/3000000\tlooped\n", "1\t0/3000000\tx\n5\t0/4000000\ty\n"):
            made.append(_archive_history(arc, 2, parents))
            code, err = _restore_line(history, tmp_path / "damaged")
            assert code == 4 and err.startswith(
                f"jarvis-tui: {made[-1].relative_to(arc.repository)}: names timelines "
            ), err
            assert "the file is damaged. Restore along another --target-timeline" in err
            timeline = arc.cli("pitr", "timeline")
            assert timeline.returncode == 0 and "the file is damaged" in timeline.stdout
            made.pop().unlink()
        made.append(_archive_history(arc, 2, "1\tZZ/3000000\tno position\n"))
        code, err = _restore_line(history, tmp_path / "no-position")
        assert code == 4 and "ZZ/3000000" in err and "target LSN" not in err, err
        assert err.startswith(f"jarvis-tui: {made[-1].relative_to(arc.repository)}: "), err
        made.pop().unlink()
        made.append(_archive_history(arc, 2, "1\t0/3000000\tbefore every base backup\n"))
        code, err = _restore_line(history, tmp_path / "off-path")
        assert code == 7 and "none of the 2 PostgreSQL base backups lies on the history" in err
        assert _restore_line(history, tmp_path / "one", "--target-timeline", "1") == (0, "")
        renamed = made[-1].with_name(made[-1].name.replace("00000002", "00000003"))
        renamed.write_bytes(made[-1].read_bytes())
        made.append(renamed)
        code, err = _restore_line(history, tmp_path / "renamed", "--target-timeline", "3")
        assert code == 4 and "expected name 00000003.history" in err
        assert "the file claims name 00000002.history" in err
    finally:
        for path in made:
            path.unlink()
    assert not any(tmp_path.iterdir())


def test_a_segment_copied_into_another_timelines_folder_does_not_count_there(
    history: History,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The listing took every segment name in wal/<system>/00000002/ for timeline 2's copy:
    timeline 1's objects copied there made the chain 'all in the archive' while wal-fetch
    (which asks for 00000002...) found none. A stray file there stopped every listing."""
    arc = history.archive
    made = [_archive_history(arc, 2, "1\t0/5000000\tbranched in segment 5\n")]
    try:
        cluster = made[0].parent
        code, err = _restore_line(history, tmp_path / "gap")
        assert code == 1 and "WAL segment 000000020000000000000005 is not in the archive" in err
        (cluster / "00000002").mkdir()
        for own in sorted((cluster / "00000001").glob("00000001000000000000000[5-9].*")):
            made.append(cluster / "00000002" / own.name)
            shutil.copy2(own, made[-1])
        made.append(cluster / "00000001" / "ZZZZZZZZZZZZZZZZZZZZZZZZ.zst.enc")
        made[-1].write_bytes(b"not ours")
        assert _restore_line(history, tmp_path / "copied") == (code, err)
        timeline = arc.cli("pitr", "timeline")
        assert timeline.returncode == 0, timeline.stderr
        assert "LSN 0/9000000 (segment 000000010000000000000008" in timeline.stdout
    finally:
        for path in reversed(made):
            path.unlink()
        with contextlib.suppress(OSError):
            (made[0].parent / "00000002").rmdir()


def test_rekey_leaves_objects_under_a_key_other_than_their_own_as_they_are(tmp_path) -> None:
    """A segment moved into another timeline's folder, or a history file copied into a
    timeline's folder, was sealed again under the new key there: a valid-looking object
    under a key wal-fetch never reads. Now named as remaining (under the old key), while
    swapped objects and another repository's stay named as problems."""
    repository, repository_id, files = reseal_archive(tmp_path / "ours")
    other, _, _ = reseal_archive(tmp_path / "other")
    keys = sorted(key for key in files if "history" not in key)
    first, second = (repository.local_path(key) for key in keys[:2])
    swapped = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(swapped)
    repository.local_path(keys[2]).write_bytes(other.local_path(keys[2]).read_bytes())
    own = repository.local_path(keys[3])
    moved = own.parent.parent / "00000002" / own.name
    moved.parent.mkdir()
    own.rename(moved)
    timeline_file = repository.local_path(next(key for key in files if "history" in key))
    copied = own.parent / timeline_file.name
    shutil.copy(timeline_file, copied)
    result = reseal_wal(repository, ROTATED, repository_id)
    root = repository.local_path("wal").parent
    assert result.resealed == [str(timeline_file.relative_to(root))]
    misplaced = {str(path.relative_to(root)) for path in (moved, copied)}
    assert {key for key, _ in result.remaining} == set(keys[:3]) | misplaced
    assert sorted(problem.split(" on local")[0] for problem in result.problems) == keys[:3]
    assert {_key_ids(repository)[key] for key in misplaced} == {OLD.key_id}


def test_a_program_named_through_a_link_in_a_closed_folder_is_found_unrunnable() -> None:
    """The checks followed the link and judged only where it points: `pitr setup` and
    --start passed a jarvis-tui named in a folder PostgreSQL's account may not enter (a
    link in /root to /opt/jarvis, say), and the archiver then got 'Permission denied'."""
    account = unprivileged_account("postgres")
    root = Path(tempfile.mkdtemp(prefix="jarvis-adversarial-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        (root / "open").mkdir(mode=0o755)
        (root / "closed").mkdir(mode=0o700)
        program = root / "open" / "jarvis-tui"
        program.write_text("#!/bin/sh\necho ran\n")
        program.chmod(0o755)
        link = root / "closed" / "jarvis-tui"
        link.symlink_to(program)
        runs = subprocess.run(  # as the archiver would: the link as the account
            [str(program)], user=account.uid, group=account.gid, capture_output=True, text=True
        )
        assert runs.stdout == "ran\n"
        with pytest.raises(PermissionError):
            subprocess.run([str(link)], user=account.uid, group=account.gid, check=False)
        command = f"{link} wal-fetch %f %p"
        with pytest.raises(JarvisError, match=f"cannot run {link} \\({root / 'closed'} is "):
            refuse_unless_startable(root / "data", account, command)
        problems = archive_command_problems(account, f"{link} wal-push %p", root)
        assert f"cannot run jarvis-tui, {link}: {root / 'closed'} is closed to it" in problems[0]
        refuse_unless_startable(root / "data", account, f"{program} wal-fetch %f %p")
        assert not any("cannot run" in p for p in archive_command_problems(
            account, f"{program} wal-push %p", root
        ))  # fmt: skip
    finally:
        shutil.rmtree(root)


def test_health_says_when_the_archivers_state_cannot_be_read(archive: Archive, tmp_path) -> None:  # noqa: F811
    """A server that answers 'postgres reachable' but refuses the archiver's queries (here a
    role refused pg_stat_archiver; a server going away or stuck past the statement timeout
    takes the same path) left health without any PITR line, and its exit code at 0 for it."""
    pg = archive.pg
    pg.execute("DROP ROLE IF EXISTS refused; CREATE ROLE refused LOGIN")
    pg.execute("REVOKE SELECT ON pg_stat_archiver FROM PUBLIC")
    env_file = tmp_path / "refused.env"
    settings = archive.env_file.read_text()
    env_file.write_text(settings.replace("postgresql://postgres@", "postgresql://refused@"))
    try:
        result = archive.cli("health", "--json", env_file=env_file)
    finally:
        pg.execute("GRANT SELECT ON pg_stat_archiver TO PUBLIC")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["postgres reachable"]["ok"], checks
    archiver = checks["PITR archiver"]
    assert not archiver["ok"] and "\n" not in archiver["detail"]
    assert archiver["detail"].startswith("cannot read the archiver's state: ")
    assert "permission denied for view pg_stat_archiver" in archiver["detail"]


def test_a_restore_point_name_is_limited_in_bytes_as_postgresql_limits_it(
    postgres_server: PostgresServer,
) -> None:
    """63 characters were allowed; PostgreSQL counts 63 bytes, so a longer name in UTF-8
    could never have been made, and recovery_target_name refuses it only at the start."""
    fits, too_long = "é" * 31, "é" * 32  # 62 and 64 bytes
    postgres_server.execute("SELECT pg_create_restore_point(%s)", (fits,))
    with pytest.raises(Exception, match="value too long for restore point"):
        postgres_server.execute("SELECT pg_create_restore_point(%s)", (too_long,))
    assert parse_target("name", fits, "pause", "x").value == fits
    with pytest.raises(JarvisError, match="restore point"):
        parse_target("name", too_long, "pause", "x")
