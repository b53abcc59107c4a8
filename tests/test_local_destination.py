"""The local repository: what only a folder on this host has (private modes, folders
made on first write and tidied on delete, temporaries, a real crash mid-write). What
every destination must do is in tests/test_destination_contract.py."""

import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engines.destinations import DESTINATION_KINDS, InvalidKeyError, LocalRepository
from engines.errors import NotFoundError
from engines.plumbing.fsutil import TEMP_MARKER, atomic_output, remove_abandoned_temporaries
from engines.repository.lock import RepositoryLock
from engines.repository.repository_id import ID_FILE
from tests.support.processes import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _file(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


@pytest.fixture
def repository(tmp_path: Path) -> LocalRepository:
    repository = LocalRepository(tmp_path / "repository")
    repository.ensure_repository_id()
    return repository


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def test_the_registry_builds_a_local_repository(tmp_path: Path):
    destination = DESTINATION_KINDS["local"](tmp_path)
    assert isinstance(destination, LocalRepository)
    assert (destination.name, destination.root) == ("local", tmp_path)


def test_the_root_and_the_folders_first_writes_make_are_private(tmp_path: Path):
    root = tmp_path / "repository"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    repository = LocalRepository(root)
    made = repository.ensure_repository_id()
    assert repository.ensure_repository_id() == made == repository.repository_id()
    assert [p.name for p in root.iterdir()] == [ID_FILE]
    with repository.open_write("postgres/a.dump.gz.enc") as output:
        output.write(b"x")
    repository.put(_file(tmp_path, "pack", b"y"), "files/packs/ab/pack-1")
    folders = [p for p in root.rglob("*") if p.is_dir()]
    assert sorted(p.relative_to(root).as_posix() for p in folders) == [
        "files",
        "files/packs",
        "files/packs/ab",
        "postgres",
    ]
    assert {_mode(p) for p in [root, *folders]} == {0o700}
    assert _mode(root / ID_FILE) == 0o600


def test_put_and_get_round_trip_privately(repository: LocalRepository, outside: Path):
    content = os.urandom(3 * 1024 * 1024 + 17)
    repository.put(_file(outside, "dump", content), "files/snapshots/2024/pack-1")

    stored = repository.path_for("files/snapshots/2024/pack-1")
    assert stored.read_bytes() == content
    assert _mode(stored) == 0o600
    assert {_mode(stored.parent), _mode(stored.parent.parent)} == {0o700}

    restored = outside / "restore" / "pack-1"
    repository.get("files/snapshots/2024/pack-1", restored)
    assert restored.read_bytes() == content
    assert _mode(restored) == 0o600


def test_put_into_a_repository_that_does_not_exist_yet(tmp_path: Path, outside: Path):
    repository = LocalRepository(tmp_path / "later" / "repository")
    repository.put(_file(outside, "x", b"x"), "redis/dump.rdb.gz.enc")
    assert _mode(repository.root) == 0o700
    assert repository.stat("redis/dump.rdb.gz.enc").size == 1


@pytest.mark.parametrize("key", ["/etc/passwd", "../escape", "postgres/../../escape", ".lock"])
def test_bad_keys_never_become_paths(repository: LocalRepository, key: str):
    before = sorted(repository.root.rglob("*"))
    with pytest.raises(InvalidKeyError, match="invalid repository key"):
        repository.path_for(key)
    assert sorted(repository.root.rglob("*")) == before


def test_listing_hides_temporaries_and_the_lock(repository: LocalRepository, outside: Path):
    repository.put(_file(outside, "x", b"x"), "postgres/done.gz.enc")
    with (
        RepositoryLock(repository.root, "backup"),
        atomic_output(repository.path_for("postgres/writing.gz.enc")) as partial,
    ):
        partial.write(b"half")
        partial.flush()
        assert [o.key for o in repository.list()] == ["postgres/done.gz.enc"]
        assert repository.stat("postgres/writing.gz.enc") is None


def test_listing_a_missing_repository_is_empty(tmp_path: Path):
    assert list(LocalRepository(tmp_path / "absent").list()) == []


def test_get_of_a_folder_is_not_found_and_creates_no_folder(
    repository: LocalRepository, outside: Path
):
    repository.put(_file(outside, "x", b"x"), "postgres/a.gz.enc")
    target = outside / "new-folder" / "restored"
    with pytest.raises(NotFoundError):
        repository.get("postgres", target)
    assert not target.parent.exists()


def test_delete_removes_the_object_and_emptied_folders(repository: LocalRepository, outside: Path):
    source = _file(outside, "x", b"x")
    repository.put(source, "files/snap/1/pack")
    repository.put(source, "files/snap/2/pack")

    repository.delete("files/snap/1/pack")
    assert repository.stat("files/snap/1/pack") is None
    assert not repository.path_for("files/snap/1/pack").parent.exists()
    repository.delete("files/snap/2/pack")
    assert not (repository.root / "files" / "snap").exists()
    assert (repository.root / "files").is_dir()  # layout folders stay

    repository.delete("files/snap/2/pack")  # absent: nothing to do, as on S3
    repository.delete("files")


def test_free_bytes_reports_the_filesystem(tmp_path: Path):
    missing = LocalRepository(tmp_path / "not" / "yet")
    assert 0 < missing.free_bytes() <= shutil.disk_usage(tmp_path).total


PUT_IN_CHILD = """
import sys
from pathlib import Path
from engines.destinations.local import LocalRepository
LocalRepository(Path(sys.argv[1])).put(Path(sys.argv[2]), sys.argv[3])
"""


def _run_put(*args: str, **options) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", PUT_IN_CHILD, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        stderr=subprocess.PIPE,
        **options,
    )


def test_a_put_that_fails_half_way_leaves_the_old_object(
    repository: LocalRepository, outside: Path
):
    repository.put(_file(outside, "old", b"previous backup"), "postgres/a.gz.enc")
    big = _file(outside, "big", os.urandom(4 * 1024 * 1024))

    def small_file_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

    # The write past 1 MiB fails with EFBIG: a real I/O error in the middle of the copy.
    child = _run_put(
        str(repository.root), str(big), "postgres/a.gz.enc", preexec_fn=small_file_limit
    )
    _, errors = child.communicate(timeout=60)
    assert child.returncode != 0
    assert b"File too large" in errors

    assert repository.path_for("postgres/a.gz.enc").read_bytes() == b"previous backup"
    assert [p.name for p in repository.path_for("postgres/a.gz.enc").parent.iterdir()] == [
        "a.gz.enc"
    ]


def test_a_put_killed_mid_copy_leaves_only_an_abandoned_temporary(
    repository: LocalRepository, tmp_path: Path
):
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    child = _run_put(str(repository.root), str(fifo), "redis/dump.rdb.gz.enc")
    folder = repository.root / "redis"
    with open(fifo, "wb") as writer:
        # More than one copy buffer, so the child has written part of it and waits for the rest.
        writer.write(b"first part of the dump " * 70_000)
        writer.flush()
        wait_until(
            lambda: any(p.stat().st_size > 0 for p in folder.glob(f"*{TEMP_MARKER}*")),
            10,
            "the child to start writing",
        )
        child.send_signal(signal.SIGKILL)
        child.wait()

    assert repository.stat("redis/dump.rdb.gz.enc") is None
    assert list(repository.list()) == []
    [temporary] = folder.iterdir()
    assert remove_abandoned_temporaries(repository.root) == [temporary]
    assert list(folder.iterdir()) == []
