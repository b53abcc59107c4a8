"""A repository, a catalog and folders to back up, for the files, secrets and config tests."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engines.config import load_settings
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace
from jarvis_tui.cli import main

KEY = "89abcdef01234567" * 4
OTHER_KEY = "fedcba9876543210" * 4
REPO_ROOT = Path(__file__).resolve().parent.parent
# Settings the machine may have in its environment: cleared for tests and trials, so that
# nothing here reads the machine's own configuration or servers.
CLEARED_PREFIXES = (
    "BACKUP_",
    "S3_",
    "POSTGRES_",
    "REDIS_",
    "PUSHOVER_",
    "SLACK_",
    "NOTIFICATION_",
    "SMTP_",
    "DATABASE_URL",
    "AWS_",
    "JARVIS_API_TOKEN",
    # libpq reads these; left set they could point a tool at the machine's own server.
    "PG",
)
# Root reads and writes anything; without these capabilities it meets permissions as others do.
NO_DAC = (
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
)


@dataclass
class FilesEnv:
    root: Path
    data: Path
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.root / "jarvis.env"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def set(self, **values: str) -> None:
        self.settings.update(values)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))

    def cli(self, *args: str) -> int:
        return main(["--env-file", str(self.env_file), *args])

    def cli_argv(self) -> list[str]:
        return [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(self.env_file)]

    def cli_process(self, *args: str, drop_privileges: bool = False) -> subprocess.CompletedProcess:
        """The CLI in its own process; with `drop_privileges`, file permissions bind even root."""
        return run_child([*self.cli_argv(), *args], drop_privileges=drop_privileges)

    def workspace(self) -> Workspace:
        return Workspace.open(load_settings(environ={}, env_file=self.env_file))

    def packs(self) -> list[Path]:
        return sorted((self.repo / "files" / "packs").glob("*/*.pack"))

    def snapshots(self) -> list[Path]:
        return sorted((self.repo / "files").glob("*_snapshot.json.*.enc"))


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def run_child(argv: list[str], *, drop_privileges: bool = False) -> subprocess.CompletedProcess:
    """`argv` in its own process at the project's root; with `drop_privileges`, file
    permissions bind even root."""
    if drop_privileges and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to test permissions as root")
        argv = [setpriv, *NO_DAC, *argv]
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=child_env()
    )


def make_files_env(root: Path) -> FilesEnv:
    data = root / "data"
    data.mkdir(parents=True)
    env = FilesEnv(root, data)
    env.set(
        BACKUP_DIR=str(root / "repo"),
        BACKUP_CATALOG_PATH=str(root / "catalog.sqlite3"),
        BACKUP_LOG_DIR=str(root / "logs"),
        BACKUP_ENCRYPTION_KEY=KEY,
        BACKUP_FILE_PATHS=str(data),
        BACKUP_COMPRESSION="zstd",
    )
    return env


def make_secrets_env(root: Path, token: str = "first") -> FilesEnv:
    """A files env whose BACKUP_SECRET_FILES is one small `app.env`."""
    env = make_files_env(root)
    secrets = env.root / "app.env"
    secrets.write_text(f"API_TOKEN={token}\n")
    env.set(BACKUP_SECRET_FILES=str(secrets))
    return env


def tree_of(folder: Path) -> dict[str, tuple]:
    """Every entry below `folder` with what a restore must preserve."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        relative = os.fsencode(path.relative_to(folder))
        if path.is_symlink():
            found[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            found[relative] = ("dir", oct(info.st_mode & 0o7777), info.st_mtime_ns)
        else:
            found[relative] = (
                "file",
                oct(info.st_mode & 0o7777),
                info.st_mtime_ns,
                path.read_bytes(),
            )
    return found


def random_text(size: int, seed: int = 1) -> bytes:
    words = [f"w{(seed * 7919 + i * 104729) % 5003:x}".encode() for i in range(4096)]
    out = bytearray()
    index = seed
    while len(out) < size:
        index = (index * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[index % len(words)] + (b"\n" if index % 11 == 0 else b" ")
    return bytes(out[:size])


def sealed_backup(env: FilesEnv, source: str, mode: str, name: str, payload: bytes) -> str:
    """`payload` stored as a complete backup of `source` the way a backup stores it (sealed
    with the real key by `store_artifact`, recorded in the catalog); returns the set id."""
    with env.workspace() as workspace:

        def work(context) -> str:
            backup_set = workspace.catalog.create_backup_set(source, tier="manual")
            store_artifact(
                workspace,
                backup_set,
                context,
                source=source,
                mode=mode,
                name=name,
                stream=[payload],
                metadata={},
            )
            workspace.catalog.finish_backup_set(backup_set.id, "complete")
            return backup_set.id

        return workspace.run_job("backup", f"backup {source}", work)
