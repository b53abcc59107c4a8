"""Prefetch for restore_command (issue #16): after a slow wal-fetch, a detached worker keeps
the next segments fetched, checked and waiting in pg_wal/jarvis-fetch/, and each of
PostgreSQL's next calls is a rename. Real throwaway clusters: one archiving through our
wal-push, copies recovering through a restore_command that logs how each call was
answered (`<name> fast|slow <exit code>`: fast when the segment was waiting)."""

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engines.config import load_settings
from engines.destinations import LocalRepository
from engines.keys import keyring_from_settings
from engines.pitr.archive_store import sealed_identity
from engines.pitr.restore_pitr import BEGIN, END
from engines.pitr.wal_files import check_segment, parse_name
from engines.pitr.wal_prefetch import clear_prefetched
from engines.pitr.wal_spools import COMING, fetch_folder
from engines.pitr.wal_worker import LOCK_NAME, worker_running
from jarvis_tui.cli import main
from tests.support.postgres import PostgresServer
from tests.support.processes import wait_until
from tests.support.s3 import S3Server
from tests.test_pitr_archive import Archive, _s3_env, archive, archive_command  # noqa: F401
from tests.test_pitr_restore import _table_and_base_backup

TABLE = "prefetch_rows"
SEGMENTS = 10  # switched after the base backup, row n in the n-th
LIMIT = 4  # BACKUP_WAL_PREFETCH where the worker is watched on its own

RESTORE_SCRIPT = """#!/bin/sh
# wal-fetch as restore_command, logging each call as "<name> fast|slow <exit code> <time>".
f="$1"; w=pg_wal/jarvis-fetch; log=jarvis-calls.log
if [ ${{#f}} = 24 ] && [ -e "$w/wanted" ]; then
  i=0
  while [ -n "{gate}" ] && [ ! -e "{gate}" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
  last=$(grep -E '^[0-9A-F]{{24}} [a-z]+ 0$' "$log" 2>/dev/null | tail -n 1 | cut -d' ' -f1)
  newer=$(printf '%s\\n%s\\n' "$last" "$f" | sort | tail -n 1)
  # A later segment while the worker lives to bring it: wait, as a longer replay would.
  i=0
  while [ "$newer" = "$f" ] && [ "$f" != "$last" ] && [ ! -e "$w/$f" ] && [ $i -lt 600 ] \\
      && kill -0 "$(cat "$w/{lock}" 2>/dev/null)" 2>/dev/null; do
    sleep 0.05; i=$((i+1))
  done
fi
how=slow; [ -e "$w/$f" ] && how=fast
{jarvis} wal-fetch "$f" "$2"; code=$?
echo "$f $how $code $(date +%s.%N)" >> "$log"
exit $code
"""


@dataclass(frozen=True)
class Switched:
    archive: Archive
    system_id: int
    names: list[str]  # names[n - 1] holds row n
    after: list[str]  # archived after them (pitr check's switch)
    moments: dict[int, str]  # row n -> the server's clock just after it committed


@pytest.fixture(scope="module")
def switched(archive: Archive) -> Switched:  # noqa: F811
    _table_and_base_backup(archive, TABLE)
    pg = archive.pg
    names, moments = [], {}
    for n in range(1, SEGMENTS + 1):
        pg.execute(f"INSERT INTO {TABLE} VALUES ({n})")
        ((moments[n], name),) = pg.execute(
            "SELECT clock_timestamp()::text, pg_walfile_name(pg_current_wal_lsn())"
        )
        names.append(name)
        pg.execute("SELECT pg_switch_wal()")
    checked = archive.cli("pitr", "check")  # the last switched segment arrived, so all did
    assert checked.returncode == 0, checked.stderr
    ((system_id,),) = pg.execute("SELECT system_identifier FROM pg_control_system()")
    assert len(set(names)) == SEGMENTS
    after = sorted(name for name in archive.stored() if name > names[-1] and len(name) == 24)
    return Switched(archive, int(system_id), names, after, moments)


def _sha256(switched: Switched, name: str) -> str:
    """The content hash sealed with the archived segment (authenticated)."""
    settings = load_settings(env_file=switched.archive.env_file)
    stored = switched.archive.stored()[name]
    key = stored.relative_to(switched.archive.repository).as_posix()
    repository = LocalRepository(switched.archive.repository)
    return sealed_identity(repository, key, keyring_from_settings(settings))["sha256"]


def _data_folder(switched: Switched, root: Path) -> Path:
    """What wal-fetch needs of a data folder being recovered: pg_control naming the
    cluster, and pg_wal/ (the worker runs as this test's account here)."""
    (root / "global").mkdir(parents=True)
    (root / "global" / "pg_control").write_bytes(struct.pack("<Q", switched.system_id) + bytes(8))
    (root / "pg_wal").mkdir()
    return root


def _env_with(switched: Switched, folder: Path, line: str) -> Path:
    """The archive's settings and one more line, in `folder` (readable by the server)."""
    env_file = folder / f"{line.split('=')[0].lower()}-{folder.name}.env"
    env_file.write_text(switched.archive.env_file.read_text() + line + "\n")
    return env_file


def _worker_pid(folder: Path) -> int:
    wait_until(lambda: (folder / LOCK_NAME).is_file() and (folder / LOCK_NAME).read_text(),
               60, "the prefetch worker to take its folder")  # fmt: skip
    return int((folder / LOCK_NAME).read_text())


def _end_worker(pgdata: Path) -> None:
    """clear_prefetched, and the worker (which sees its folder gone) ended."""
    folder = fetch_folder(pgdata / "pg_wal")
    pid = int((folder / LOCK_NAME).read_text() or 0) if (folder / LOCK_NAME).is_file() else 0
    clear_prefetched(pgdata)
    assert not folder.exists()
    if pid:
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 60,
                   "the worker to end once its folder is gone")  # fmt: skip


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def _spooled(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if len(p.name) == 24)


# --- the worker on its own, no server: wal-fetch called as PostgreSQL would ------------


def test_the_worker_follows_recovery_and_hands_out_only_its_names(
    switched: Switched, tmp_path
) -> None:
    arc, names = switched.archive, switched.names
    pgdata = _data_folder(switched, tmp_path / "data")
    dest = pgdata / "pg_wal" / "RECOVERYXLOG"
    folder = fetch_folder(pgdata / "pg_wal")
    env_file = _env_with(switched, tmp_path, f"BACKUP_WAL_PREFETCH={LIMIT}")

    def fetch(name: str) -> subprocess.CompletedProcess:
        return arc.cli("wal-fetch", name, str(dest), env_file=env_file)

    try:
        assert fetch(names[0]).returncode == 0  # slow: starts the worker
        wait_until(lambda: _spooled(folder) == names[1 : 1 + LIMIT], 60, "the prefetch")
        # Another timeline's name of a spooled segment is not it: not in the archive.
        other = "00000002" + names[1][8:]
        missing = fetch(other)
        assert missing.returncode == 1, missing.stderr
        assert names[1] in _spooled(folder)
        # The fast path moves a spooled segment into place, byte for byte the archive's.
        assert fetch(names[1]).returncode == 0
        assert names[1] not in _spooled(folder)
        check_segment(dest.read_bytes(), parse_name(names[1]), "fetched")
        assert _sha256(switched, names[1]) == _hash(dest)
        # The worker refills to its limit after what was taken.
        wait_until(lambda: _spooled(folder) == names[2 : 2 + LIMIT], 60, "the refill")
        # A name it did not have (a jump ahead): fetched slowly, the worker repositioned
        # there; files behind it and another timeline's go.
        (folder / other).write_bytes(b"not for anyone")
        jump = names[LIMIT + 3]
        assert jump not in _spooled(folder)
        assert fetch(jump).returncode == 0
        assert _sha256(switched, jump) == _hash(dest)
        assert not (folder / other).exists()
        assert all(name > jump for name in _spooled(folder))
        rest = [*names[LIMIT + 4 :], *switched.after]
        wait_until(lambda: _spooled(folder) == rest, 60, "the prefetch after the jump")
        # At the archive's end with everything taken, the worker ends by itself.
        for name in rest:
            assert fetch(name).returncode == 0
            assert _sha256(switched, name) == _hash(dest)
        wait_until(lambda: not worker_running(folder), 60, "the worker to end at the archive's end")
        assert _spooled(folder) == []
    finally:
        _end_worker(pgdata)


def _hash(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_segment_is_never_spooled_and_the_slow_path_stops_on_it(
    switched: Switched, tmp_path
) -> None:
    arc, names = switched.archive, switched.names
    stored = arc.stored()[names[3]]
    original = stored.read_bytes()
    pgdata = _data_folder(switched, tmp_path / "data")
    dest = pgdata / "pg_wal" / "RECOVERYXLOG"
    folder = fetch_folder(pgdata / "pg_wal")
    try:
        stored.write_bytes(original[: len(original) // 2])
        assert arc.fetch(names[0], dest).returncode == 0
        wait_until(lambda: _spooled(folder) == names[1:3], 60, "the prefetch up to the damage")
        for name in names[1:3]:
            assert arc.fetch(name, dest).returncode == 0
        # All it fetched was taken and it stopped before the damage: it ends.
        wait_until(lambda: not worker_running(folder), 60, "the worker to end at the damage")
        assert _spooled(folder) == []
        result = arc.fetch(names[3], dest)
        assert result.returncode == 126 and "truncated" in result.stderr, result.stderr
    finally:
        stored.write_bytes(original)
        _end_worker(pgdata)


def test_segments_only_on_an_s3_copy_are_prefetched_too(
    switched: Switched, tmp_path, s3_server: S3Server
) -> None:
    arc, names = switched.archive, switched.names[:4]
    bucket = s3_server.create_bucket("jarvis-prefetch")
    repository = tmp_path / "repository"
    env_file = _s3_env(arc, tmp_path, repository, bucket, s3_server.endpoint_url)
    plain = tmp_path / "plain" / "pg_wal"
    plain.mkdir(parents=True)
    for name in names:
        assert arc.fetch(name, plain / name).returncode == 0
        assert main(["--env-file", str(env_file), "wal-push", str(plain / name)]) == 0
    for stored in repository.glob("wal/*/00000001/*.enc"):
        stored.unlink()  # a fresh host: the segments are on S3 only
    client = s3_server.client()
    damaged = next(
        item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]
        if names[3] in item["Key"]
    )  # fmt: skip
    body = client.get_object(Bucket=bucket, Key=damaged)["Body"].read()
    client.put_object(Bucket=bucket, Key=damaged, Body=body[:-100])
    pgdata = _data_folder(switched, tmp_path / "data")
    dest = pgdata / "pg_wal" / "RECOVERYXLOG"
    folder = fetch_folder(pgdata / "pg_wal")
    try:
        assert arc.cli("wal-fetch", names[0], str(dest), env_file=env_file).returncode == 0
        wait_until(lambda: _spooled(folder) == names[1:3], 60, "the prefetch from S3")
        for name in names[1:3]:
            assert arc.cli("wal-fetch", name, str(dest), env_file=env_file).returncode == 0
            assert dest.read_bytes() == (plain / name).read_bytes()
        wait_until(lambda: not worker_running(folder), 60, "the worker to end at the damage")
        result = arc.cli("wal-fetch", names[3], str(dest), env_file=env_file)
        assert result.returncode == 126, result.stderr
        assert not (folder / names[3]).exists()
    finally:
        _end_worker(pgdata)


# --- recovery by PostgreSQL ------------------------------------------------------------


def _restored(switched: Switched, folder: Path, row: int) -> None:
    result = switched.archive.cli(
        "restore", "postgres", "--pitr", "--target-time", switched.moments[row],
        "--pgdata", str(folder),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _server(switched: Switched, folder: Path, env_file: Path, gate: Path | None = None):
    """A server on the restored folder whose restore_command is the logging script."""
    arc = switched.archive
    jarvis = archive_command(arc.pg, env_file).strip("'").removesuffix(" wal-push %p")
    script = arc.root / f"restore-{folder.name}.sh"
    script.write_text(RESTORE_SCRIPT.format(gate=gate or "", lock=LOCK_NAME, jarvis=jarvis))
    script.chmod(0o755)
    auto = folder / "postgresql.auto.conf"
    text = auto.read_text()
    block = text[text.index(BEGIN) : text.index(END)]
    line = next(x for x in block.splitlines() if x.startswith("restore_command"))
    auto.write_text(text.replace(line, f"restore_command = '{script} %f %p'"))
    return PostgresServer(data_source=folder)


def _calls(server: PostgresServer) -> list[tuple[str, str, int]]:
    log = server.data_dir / "jarvis-calls.log"
    lines = log.read_text().split("\n") if log.exists() else []
    return [(name, how, int(code)) for name, how, code, _ in (x.split() for x in lines if x)]


def _promoted(server: PostgresServer) -> list[int]:
    wait_until(lambda: server.execute("SELECT NOT pg_is_in_recovery()") == [(True,)], 90,
               "the restored server to reach its target and promote")  # fmt: skip
    return [n for (n,) in server.execute(f"SELECT n FROM {TABLE} ORDER BY n")]


def test_a_restore_across_many_segments_takes_them_from_the_spool(
    switched: Switched, tmp_path
) -> None:
    row = SEGMENTS - 2
    folder = tmp_path / "many"
    _restored(switched, folder, row)
    server = _server(switched, folder, switched.archive.env_file)
    try:
        server.start()
        assert _promoted(server) == list(range(1, row + 1))
        calls = [c for c in _calls(server) if c[0] in switched.names]
        assert all(code == 0 for _, _, code in calls), calls
        fast = [name for name, how, _ in calls if how == "fast"]
        # Only the first segment after the start (and any asked for again) is slow.
        assert len(fast) >= row - 2, calls
        assert set(switched.names[1:row]) <= set(fast), calls
    finally:
        _end_worker(server.data_dir)
        server.close()


def test_a_forged_segment_is_never_spooled_and_recovery_stops_with_126(
    switched: Switched, tmp_path
) -> None:
    arc, names = switched.archive, switched.names
    stored = arc.stored()
    forged = names[5]
    original = stored[forged].read_bytes()
    folder = tmp_path / "forged"
    _restored(switched, folder, SEGMENTS - 2)
    server = _server(switched, folder, arc.env_file)
    try:
        shutil.copy(stored[names[4]], stored[forged])  # another segment's object under its name
        with contextlib.suppress(RuntimeError):  # it may stop before it ever answered
            server.start()
        wait_until(lambda: server._process.poll() is not None, 90,
                   "the server to stop at the forged segment")  # fmt: skip
        calls = _calls(server)
        assert (forged, "slow", 126) in calls, calls
        assert not [c for c in calls if c[0] > forged and c[0] in names], calls
        spool = fetch_folder(server.data_dir / "pg_wal")
        assert forged not in _spooled(spool)
        wait_until(lambda: all(n < forged for n in _spooled(spool)), 60,
                   "the worker to drop what it fetched past the forged segment")  # fmt: skip
        log = server.log_path.read_text()
        assert "archive recovery complete" not in log and "FATAL" in log
    finally:
        stored[forged].write_bytes(original)
        _end_worker(server.data_dir)
        server.close()


def test_a_worker_killed_mid_write_leaves_no_partial_segment_and_recovery_completes(
    switched: Switched, tmp_path
) -> None:
    arc, names = switched.archive, switched.names
    env_file = _env_with(switched, arc.root, f"BACKUP_WAL_PREFETCH={SEGMENTS * 2}")
    gate = arc.root / "kill-gate"
    gate.unlink(missing_ok=True)
    row = SEGMENTS - 2
    folder = tmp_path / "killed"
    _restored(switched, folder, row)
    server = _server(switched, folder, env_file, gate)
    spool = fetch_folder(server.data_dir / "pg_wal")
    starting = threading.Thread(target=server.start)  # it answers once recovery is consistent
    try:
        starting.start()
        pid = _worker_pid(spool)
        _catch_writing(spool)
        os.kill(pid, signal.SIGKILL)  # mid-write: its temporary is there
        wait_until(lambda: _zombie(pid), 60, "the killed worker to end")
        assert _temporaries(spool)
        for name in _spooled(spool):  # whatever is under a final name is whole and right
            check_segment((spool / name).read_bytes(), parse_name(name), name)
            assert _hash(spool / name) == _sha256(switched, name)
        gate.touch()
        starting.join()
        assert _promoted(server) == list(range(1, row + 1))
        calls = [c for c in _calls(server) if c[0] in names]
        assert all(code == 0 for _, _, code in calls), calls
        assert not _temporaries(spool)  # the next worker removed the killed one's
    finally:
        gate.touch()
        starting.join()
        _end_worker(server.data_dir)
        server.close()


def _catch_writing(folder: Path) -> None:
    """Return while a segment is on its way (its .part there), preferably once bytes are
    being written into it (milliseconds each, so a tight look catches one)."""
    deadline = time.monotonic() + 60
    while True:
        parts = _temporaries(folder)
        if any(_size(folder / part) for part in parts):
            return
        if parts and time.monotonic() > deadline - 50:
            return
        assert time.monotonic() < deadline, "the worker never fetched a segment"
        time.sleep(0.0002)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _temporaries(folder: Path) -> list[str]:
    try:
        return [name for name in os.listdir(folder) if name.endswith(COMING)]
    except FileNotFoundError:
        return []
