"""The repository lock on a full disk and on a repository this user may not write
(found by benchmarks/trials.py): its holder record only tells others who holds it, so
a full disk must not stop `cleanup` (the command that frees space) or any read, and a
repository made read-only with `chmod -R a-w` serves dry runs and `catalog rebuild` as a
read-only mount does. Real CLI processes throughout."""

import hashlib
import subprocess
from pathlib import Path

from jarvis_tui.exit_codes import ExitCode
from tests.support.file_systems import fill, needs_root, tmpfs
from tests.support.files_env import FilesEnv, make_files_env


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def backed_up(env: FilesEnv) -> None:
    (env.data / "song.txt").write_text("la la la\n")
    (env.root / "app.env").write_text("TOKEN=abc\n")
    env.set(BACKUP_SECRET_FILES=str(env.root / "app.env"))
    for kind in ("files", "secrets", "secrets"):
        assert env.cli_process("backup", kind).returncode == ExitCode.OK, kind


@needs_root
def test_a_full_repository_still_serves_reads_and_cleanup_frees_space(tmp_path, isolated_env):
    env = make_files_env(tmp_path)
    with tmpfs(env.repo, "2m"):
        backed_up(env)
        secrets_sets = sorted(env.repo.glob("secrets/*.enc"), key=lambda p: p.stat().st_mtime_ns)
        fill(env.repo)
        for args in (
            ("prune", "--dry-run"),
            ("repair", "--dry-run"),
            ("rekey", "--dry-run"),
            ("catalog", "rebuild"),
            ("cleanup", "--dry-run"),
            ("drill",),  # its scratch restores go to the cache folder, as on a read-only one
        ):
            before = digest(env.repo)
            result = env.cli_process(*args)
            assert result.returncode == ExitCode.OK, (args, result.stderr)
            assert digest(env.repo) == before, args

        result = env.cli_process("cleanup")  # retention deletes the older secrets backup
        assert result.returncode == ExitCode.OK, result.stderr
        assert sorted(env.repo.glob("secrets/*.enc")) == secrets_sets[1:]


@needs_root
def test_a_repository_this_user_may_not_write_serves_dry_runs_and_rebuild(tmp_path, isolated_env):
    env = make_files_env(tmp_path)
    backed_up(env)
    subprocess.run(["chmod", "-R", "a-w", str(env.repo)], check=True)
    try:
        before = digest(env.repo)
        for args in (
            ("prune", "--dry-run"),
            ("repair", "--dry-run"),
            ("rekey", "--dry-run"),
            ("catalog", "rebuild"),
        ):
            result = env.cli_process(*args, drop_privileges=True)
            assert result.returncode == ExitCode.OK, (args, result.stderr)
        result = env.cli_process("prune", drop_privileges=True)
        assert result.returncode == ExitCode.FAILED
        assert f"{env.repo}/.lock: permission denied" in result.stderr
        assert "Traceback" not in result.stderr
        assert digest(env.repo) == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(env.repo)], check=True)
