"""The files store needs nothing of a destination but its face: every files verb runs over
a destination that offers only the `Destination` methods, whose streams have no file
descriptor and whose objects have no file on this host, as S3's will not."""

import io
import tarfile

import pytest

from engines.destinations.local import LocalRepository
from engines.workspace import Workspace
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text


class FaceOnly:
    """A local repository behind the face alone (no `path_for`, no `root`)."""

    def __init__(self, local: LocalRepository):
        self._local = local
        self.name = "face-only"
        self.reads = 0

    def open_write(self, key):
        return self._local.open_write(key)

    def open_read(self, key, offset=0, length=None):
        self.reads += 1
        with self._local.open_read(key, offset, length) as handle:
            return io.BytesIO(handle.read())  # seekable, but no file descriptor

    def put(self, local_path, key):
        self._local.put(local_path, key)

    def get(self, key, local_path):
        self._local.get(key, local_path)

    def list(self, prefix=""):
        return self._local.list(prefix)

    def stat(self, key):
        return self._local.stat(key)

    def delete(self, key):
        self._local.delete(key)

    def local_path(self, key):
        return None

    def probe(self):
        return self._local.probe()

    def repository_id(self):
        return self._local.repository_id()

    def ensure_repository_id(self):
        return self._local.ensure_repository_id()


@pytest.fixture
def env(tmp_path, isolated_env, monkeypatch) -> FilesEnv:
    opened = Workspace.open
    faces: list[FaceOnly] = []

    def open_face_only(settings):
        workspace = opened(settings)
        faces.append(FaceOnly(workspace.repository))
        workspace.repository = faces[-1]
        return workspace

    monkeypatch.setattr(Workspace, "open", open_face_only)
    files = make_files_env(tmp_path / "files")
    files.faces = faces  # type: ignore[attr-defined]
    return files


def test_every_files_verb_works_through_the_face_alone(env):
    first = {f"f{i:02}.txt": random_text(20_000 + 300 * i, i) for i in range(30)}
    for name, content in first.items():
        (env.data / name).write_bytes(content)
    assert env.cli("backup", "files") == ExitCode.OK
    (env.data / "f00.txt").write_bytes(b"changed")
    (env.data / "f01.txt").unlink()
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    assert env.faces[-1].reads > 0  # the verbs read through the face

    with env.workspace() as workspace:
        older, newer = sorted(s.id for s in workspace.catalog.list_backup_sets(kind="files"))
    assert env.cli("verify", newer, "--read-data") == ExitCode.OK
    assert env.cli("diff", older, newer) == ExitCode.OK
    target = env.root / "restored"
    assert env.cli("restore", "files", older, "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(env.data).lstrip("/")
    assert {p.name: p.read_bytes() for p in restored.iterdir()} == first
    tarball = env.root / "newer.tar.gz"
    assert env.cli("export", "files", newer, "--tar", str(tarball)) == ExitCode.OK
    with tarfile.open(tarball) as tar:
        names = {member.name.rpartition("/")[2] for member in tar.getmembers()}
    assert "f00.txt" in names and "f01.txt" not in names

    with env.workspace() as workspace:
        workspace.catalog.delete_backup_set(older)  # as retention would, then prune
    (env.repo / "files" / f"{older}_snapshot.json.zst.enc").unlink()
    assert env.cli("prune") == ExitCode.OK
    assert env.cli("repair") == ExitCode.OK
    assert env.cli("verify", newer, "--read-data") == ExitCode.OK
