"""The console's export verb: all or nothing into a new folder, against a real repository."""

import sys
import tarfile
from pathlib import Path

import pytest

from engines.actions.verbs import Request, run_verb
from engines.errors import JarvisError
from tests.support.files_env import FilesEnv, make_files_env, run_child

# Run in a process of its own without the capability to override permissions (the tests
# run as root): the destination is made unwritable once the first artifact is written.
FAULT_SCRIPT = """
import os, sys
from pathlib import Path
from engines.actions.verbs import Request, run_verb
from engines.config import load_settings
from engines.jobs import JobLogged
from engines.workspace import Workspace

env_file, folder, *relpaths = sys.argv[1:]
folder = Path(folder)

def unwritable_after_the_first(update):
    if isinstance(update, JobLogged) and update.message.endswith(" ready"):
        for staging in folder.parent.glob(f".{folder.name}.tmp-*"):
            os.chmod(staging, 0o500)

with Workspace.open(load_settings(env_file=Path(env_file))) as workspace:
    try:
        run_verb(workspace, "export", Request(relpaths=tuple(relpaths), output=folder),
                 listeners=(unwritable_after_the_first,))
    except Exception as error:
        print(error)
        sys.exit(1)
"""


@pytest.fixture
def backed_up(tmp_path, isolated_env) -> tuple[FilesEnv, list[str]]:
    env = make_files_env(tmp_path / "env")
    (env.data / "notes.txt").write_text("Grüße\n" * 50)
    (env.data / "music").mkdir()
    (env.data / "music" / "a.mp3").write_bytes(bytes(range(256)) * 40)
    secrets = env.root / "app.env"
    secrets.write_text("API_TOKEN=tok-123\n")
    env.set(BACKUP_SECRET_FILES=str(secrets))
    assert env.cli("backup", "secrets") == 0
    assert env.cli("backup", "files") == 0
    with env.workspace() as workspace:
        sets = workspace.catalog.list_backup_sets()
        relpaths = [a.relpath for s in reversed(sets) for a in workspace.catalog.artifacts_of(s.id)]
    return env, relpaths


def export(env: FilesEnv, relpaths: list[str], folder: Path) -> list[Path]:
    with env.workspace() as workspace:
        return run_verb(workspace, "export", Request(relpaths=tuple(relpaths), output=folder))


def test_export_writes_a_tarball_and_refuses_a_second_time(backed_up, tmp_path):
    env, relpaths = backed_up
    folder = tmp_path / "exports" / "set"
    written = export(env, relpaths, folder)
    assert sorted(p.parent for p in written) == [folder, folder]
    tarball = next(p for p in written if p.name.endswith("_files.tar.gz"))
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        notes = next(n for n in names if n.endswith("notes.txt"))
        assert tar.extractfile(notes).read() == ("Grüße\n" * 50).encode()
    assert any(n.endswith("music/a.mp3") for n in names)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(JarvisError, match=r"already holds files.*nothing was written"):
        export(env, relpaths, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["set"]  # no temporary left


def test_a_destination_unwritable_midway_leaves_nothing(backed_up, tmp_path):
    env, relpaths = backed_up
    folder = tmp_path / "out" / "set"
    argv = [sys.executable, "-c", FAULT_SCRIPT, str(env.env_file), str(folder), *relpaths]
    result = run_child(argv, drop_privileges=True)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0] and str(folder) in lines[0]
    assert "nothing was exported" in lines[0] and "Errno" not in lines[0]
    assert not (tmp_path / "out").exists()  # no temporary, nor the folder made for it


def test_an_export_into_the_repository_is_refused(backed_up, tmp_path, capsys):
    """The repository's every file goes off-site at the next sync (plan_copy lists them all):
    an export there (named, or through a symlink) would upload the secrets in the clear."""
    env, relpaths = backed_up
    before = sorted(p for p in env.repo.rglob("*"))
    link = tmp_path / "looks-elsewhere"
    link.symlink_to(env.repo)
    for folder in (env.repo / "exports" / "set", link / "set", env.repo):
        with pytest.raises(JarvisError, match=r"inside the repository.*nothing was written"):
            export(env, relpaths, folder)
    secrets = next(r for r in relpaths if r.startswith("secrets/"))
    snapshot = next(r for r in relpaths if r.startswith("files/"))
    for command in (
        ("decrypt", secrets, "-o", str(link / "app.env.zst")),
        ("export", "files", snapshot, "--tar", str(env.repo / "files.tar.gz")),
    ):
        capsys.readouterr()
        assert env.cli(*command) != 0, command
        assert "inside the repository" in capsys.readouterr().err
    assert sorted(p for p in env.repo.rglob("*")) == before


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from engines.actions.verbs import Request, run_verb
from engines.config import load_settings
from engines.jobs import JobLogged
from engines.workspace import Workspace

env_file, folder, *relpaths = sys.argv[1:]

def killed_after_the_first(update):
    if isinstance(update, JobLogged) and update.message.endswith(" ready"):
        os.kill(os.getpid(), signal.SIGKILL)

with Workspace.open(load_settings(env_file=Path(env_file))) as workspace:
    run_verb(workspace, "export", Request(relpaths=tuple(relpaths), output=Path(folder)),
             listeners=(killed_after_the_first,))
"""


def test_an_export_killed_midway_leaves_no_decrypted_data_once_exported_again(backed_up, tmp_path):
    """A killed export (no cancel: SIGKILL, the OOM killer) cannot clean up: its hidden
    staging folder kept the decrypted secrets. The next export there removes it."""
    env, relpaths = backed_up
    folder = tmp_path / "out" / "set"
    argv = [sys.executable, "-c", KILL_SCRIPT, str(env.env_file), str(folder), *relpaths]
    result = run_child(argv)
    assert result.returncode == -9, result.stderr
    (left,) = folder.parent.glob(".set.tmp-*")
    assert any(left.iterdir())  # the first artifact, decrypted
    export(env, relpaths, folder)
    assert [p.name for p in folder.parent.iterdir()] == ["set"]
