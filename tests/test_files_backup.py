"""`backup files`: complete snapshots, incremental skips, deduplication, catalog and bad input."""

import os
import socket
import stat
import time

import pytest

from engines.store import ingest as ingest_module
from engines.store import walker as walker_module
from engines.store.snapshots import load_manifest
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size
from tests.support.files_env import FilesEnv, make_files_env, random_text, tree_of


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_files_env(tmp_path / "files")


def _populate(data):
    (data / "music").mkdir()
    (data / "music/song.mp3").write_bytes(os.urandom(2_500_000))
    (data / "music/notes.txt").write_bytes(random_text(20_000))
    (data / "empty").mkdir()
    (data / "config").mkdir(mode=0o750)
    (data / "config/app.yaml").write_text("debug: false\n")
    os.chmod(data / "config/app.yaml", 0o640)
    (data / "link").symlink_to("music/notes.txt")
    (data / os.fsdecode(b"caf\xe9-latin1.txt")).write_bytes(b"not utf-8 name")
    (data / "skip.tmp").write_text("excluded by the default patterns")
    os.utime(data / "music/notes.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


def _manifest(env: FilesEnv, index: int = -1):
    with env.workspace() as workspace:
        return load_manifest(env.snapshots()[index], workspace.keyring())


def _latest_summary(env: FilesEnv) -> dict:
    with env.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "files")
        return workspace.catalog.artifacts_of(backup_set.id)[0].metadata["snapshot"]


def test_round_trip_keeps_modes_times_symlinks_empty_folders_and_odd_names(env, capsys):
    _populate(env.data)
    assert env.cli("backup", "files") == ExitCode.OK
    assert "complete" in capsys.readouterr().out
    target = env.root / "restored"
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(env.data).lstrip("/")
    expected = tree_of(env.data)
    del expected[b"skip.tmp"]
    assert tree_of(restored) == expected
    assert stat.S_IMODE(restored.stat().st_mode) == stat.S_IMODE(env.data.stat().st_mode)
    # Every file ends up in packs: the repository holds no object per file.
    assert len(env.packs()) == 1
    assert not list((env.repo / "files").glob("*.txt"))


def test_incremental_reads_only_what_changed_and_stores_only_new_content(env, capsys):
    _populate(env.data)
    big = env.data / "music/big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    assert env.cli("backup", "files") == ExitCode.OK
    first = _latest_summary(env)
    assert first["files_read"] == 5

    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    unchanged = _latest_summary(env)
    assert unchanged["files_read"] == 0 and unchanged["new_bytes"] == 0
    assert unchanged["packs_written"] == 0 and unchanged["parent"]

    with big.open("r+b") as handle:  # a 4 KiB edit in the middle of a 6 MiB file
        handle.seek(3 * 1024 * 1024)
        handle.write(os.urandom(4096))
    (env.data / "music/new.txt").write_text("a new file\n")
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    changed = _latest_summary(env)
    assert changed["files_read"] == 2
    assert 0 < changed["new_bytes"] < 3 * 1024 * 1024
    # A full (non-incremental) backup reads everything yet stores nothing new.
    assert env.cli("backup", "files") == ExitCode.OK
    full = _latest_summary(env)
    assert full["files_read"] == 6 and full["new_bytes"] == 0
    capsys.readouterr()
    # Every snapshot stays complete on its own.
    for number in range(len(env.snapshots())):
        assert len(_manifest(env, number).entries) >= 9


def test_snapshots_are_listed_and_the_catalog_rebuilds_from_the_repository(env, capsys):
    _populate(env.data)
    assert env.cli("backup", "files") == ExitCode.OK
    capsys.readouterr()
    assert env.cli("list", "--kind", "files") == ExitCode.OK
    listing = capsys.readouterr().out
    assert "files_" in listing and "complete" in listing
    with env.workspace() as workspace:  # the size counts the packs, not just the manifest
        [snapshot] = workspace.catalog.list_backup_sets(kind="files")
        [manifest] = workspace.catalog.artifacts_of(snapshot.id)
        packs = manifest.metadata["snapshot"]["stored_bytes"]
        assert packs > 0
        assert snapshot.stored_size == manifest.stored_size + packs == manifest.added_bytes
    assert human_size(snapshot.stored_size) in listing
    (env.root / "catalog.sqlite3").unlink()
    for suffix in ("-wal", "-shm"):
        (env.root / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)
    assert env.cli("catalog", "rebuild") == ExitCode.OK
    assert "imported 1 artifact(s)" in capsys.readouterr().out
    target = env.root / "restored"
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    day = time.strftime("files_%Y-%m-%d", time.gmtime())
    assert env.cli("restore", "files", day, "--dry-run", "--target-dir", str(target)) == 0
    assert "skip" in capsys.readouterr().out  # everything is already there and unchanged


def test_a_file_that_changes_while_read_is_marked(env, monkeypatch, capsys):
    (env.data / "growing.log").write_bytes(random_text(100_000))
    original = ingest_module.Ingest._read_chunks

    def read_then_append(self, entry, handle, size):
        read = original(self, entry, handle, size)
        with open(env.data / "growing.log", "ab") as writer:  # another process writing
            writer.write(b"appended while the backup read the file\n")
        return read

    monkeypatch.setattr(ingest_module.Ingest, "_read_chunks", read_then_append)
    assert env.cli("backup", "files") == ExitCode.OK
    assert "changed while being read" in capsys.readouterr().err
    entry = next(e for e in _manifest(env).entries if e.path.endswith("growing.log"))
    assert entry.changed
    assert _latest_summary(env)["changed_while_reading"] == 1
    monkeypatch.undo()
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    assert _latest_summary(env)["files_read"] == 1  # a changed file is read again


def _open_alerts(env: FilesEnv) -> list:
    with env.workspace() as workspace:
        return workspace.catalog.open_conditions("backup_paths_missing:")


def test_a_missing_folder_is_alerted_and_the_others_are_backed_up(env):
    (env.data / "kept.txt").write_text("backed up although another folder is missing")
    nowhere = env.root / "nowhere"
    env.set(BACKUP_FILE_PATHS=f"{env.data},{nowhere}")
    result = env.cli_process("backup", "files")
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert str(nowhere) in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    paths = [e.path for e in _manifest(env).entries]
    assert any(p.endswith("kept.txt") for p in paths)
    assert _latest_summary(env)["missing"] == [str(nowhere)]
    with env.workspace() as workspace:  # as in `backup full`: a copy missing a folder
        backup_set = workspace.catalog.get_backup_set("latest", "files")
    assert backup_set.status == "partial" and str(nowhere) in (backup_set.error or "")
    (alert,) = _open_alerts(env)
    assert alert.severity == "critical" and str(nowhere) in alert.message

    nowhere.mkdir()  # back again: the next backup succeeds and clears the alert
    assert env.cli_process("backup", "files").returncode == ExitCode.OK
    assert _open_alerts(env) == []


def test_every_folder_missing_is_a_clear_failure_and_nothing_is_written(env):
    env.set(BACKUP_FILE_PATHS=f"{env.root / 'nowhere'},{env.root / 'gone'}")
    result = env.cli_process("backup", "files")
    assert result.returncode == ExitCode.NOT_FOUND, result.stderr
    assert "BACKUP_FILE_PATHS" in result.stderr and "nowhere" in result.stderr
    assert "gone" in result.stderr and "Traceback" not in result.stderr
    assert not env.packs() and not env.snapshots()


def test_a_folder_inside_another_configured_one_is_backed_up_once(env, capsys):
    (env.data / "sub").mkdir()
    (env.data / "sub/inner.txt").write_text("listed once")
    env.set(BACKUP_FILE_PATHS=f"{env.data / 'sub'},{env.data}")
    assert env.cli("backup", "files") == ExitCode.OK
    target = env.root / "target"
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(env.data).lstrip("/")
    assert (restored / "sub/inner.txt").read_text() == "listed once"


def test_special_files_are_skipped_and_logged(env, capsys):
    (env.data / "ok.txt").write_text("fine")
    os.mkfifo(env.data / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(env.data / "sock"))
    try:
        assert env.cli("backup", "files") == ExitCode.OK
    finally:
        server.close()
    capsys.readouterr()
    paths = [e.path.rsplit("/", 1)[-1] for e in _manifest(env).entries]
    assert "ok.txt" in paths and "pipe" not in paths and "sock" not in paths
    assert _latest_summary(env)["special_skipped"] == 2
    with env.workspace() as workspace:
        job = workspace.catalog.list_jobs(limit=1)[0]
        messages = [e.message for e in workspace.catalog.job_events(job.id)]
    assert any("skipped FIFO" in m for m in messages)
    assert any("skipped socket" in m for m in messages)


def test_a_file_deleted_during_the_walk_is_reported_not_fatal(env, monkeypatch, capsys):
    (env.data / "stays.txt").write_text("stays")
    (env.data / "goes.txt").write_text("goes")
    walk = walker_module.Walker.walk

    def walk_then_delete(self, roots):
        for walked in walk(self, roots):
            yield walked
            if walked.path.endswith("goes.txt"):
                os.unlink(walked.absolute)  # deleted after the walk saw it, before it is read

    monkeypatch.setattr(walker_module.Walker, "walk", walk_then_delete)
    assert env.cli("backup", "files") == ExitCode.OK
    assert "vanished" in capsys.readouterr().err or _latest_summary(env)["vanished"] == 1
    paths = [e.path for e in _manifest(env).entries]
    assert any(p.endswith("stays.txt") for p in paths)
    assert not any(p.endswith("goes.txt") for p in paths)


def test_unreadable_files_and_folders_warn_and_exit_non_zero(env):
    (env.data / "ok.txt").write_text("fine")
    secret = env.data / "locked.txt"
    secret.write_text("no access")
    secret.chmod(0)
    folder = env.data / "closed"
    folder.mkdir()
    (folder / "inside.txt").write_text("x")
    folder.chmod(0)
    try:
        result = env.cli_process("backup", "files", drop_privileges=True)
    finally:
        folder.chmod(0o700)
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "could not be read" in result.stderr
    summary = _latest_summary(env)
    assert summary["unreadable"] == 2
    paths = [e.path for e in _manifest(env).entries]
    assert any(p.endswith("ok.txt") for p in paths)
    assert not any(p.endswith("locked.txt") for p in paths)


def test_the_repository_inside_a_backed_up_folder_is_not_backed_up(env):
    (env.data / "a.txt").write_text("a")
    env.set(BACKUP_DIR=str(env.data / "repo"))
    assert env.cli("backup", "files") == ExitCode.OK
    assert env.cli("backup", "files") == ExitCode.OK
    with env.workspace() as workspace:
        keyring = workspace.keyring()
    manifests = sorted((env.data / "repo/files").glob("*_snapshot.json.*.enc"))
    paths = [e.path for e in load_manifest(manifests[-1], keyring).entries]
    assert not any("/repo" in p for p in paths)


def test_an_unreadable_folder_to_back_up_is_refused(env):
    (env.data / "a.txt").write_text("a")
    env.data.chmod(0)
    try:
        result = env.cli_process("backup", "files", drop_privileges=True)
    finally:
        env.data.chmod(0o700)
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "cannot read folder" in result.stderr and str(env.data) in result.stderr
    assert not env.packs() and not env.snapshots()


def test_a_snapshot_inside_a_full_backup_is_found_for_restore_and_incremental(env, capsys):
    (env.data / "a.txt").write_text("in a full backup")
    env.set(BACKUP_SECRET_FILES=str(env.root / "absent.env"))  # that part fails: a partial set
    assert env.cli("backup", "full") in (ExitCode.OK, ExitCode.FAILED)
    with env.workspace() as workspace:
        full = workspace.catalog.list_backup_sets(kind="full")[0]
    assert any(a.source == "files" for a in workspace_artifacts(env, full.id))
    capsys.readouterr()
    target = env.root / "target"
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    assert (target / str(env.data).lstrip("/") / "a.txt").read_text() == "in a full backup"
    assert env.cli("restore", "files", full.id, "--dry-run", "--target-dir", str(target)) == 0
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    summary = _latest_summary(env)
    assert summary["files_read"] == 0 and summary["parent"] == full.id


def workspace_artifacts(env: FilesEnv, set_id: str):
    with env.workspace() as workspace:
        return workspace.catalog.artifacts_of(set_id)
