"""OS errors in front of an operator: one line naming the path and what to do, the
documented exit code, an alert where a backup fails, and nothing changed.

A read-only repository (a tmpfs remounted read-only), a full one (a tiny tmpfs), path
settings below a regular file, a non-tar config artifact, a 300-character file name, and
`jarvis-tui list | head -1`. Every command runs the real CLI against real servers.
"""

import contextlib
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines.catalog import Catalog
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.support.file_systems import needs_root, remount_read_only, tmpfs
from tests.support.files_env import KEY, REPO_ROOT, child_env
from tests.support.pg_seed import seed_database, unique_name


class Site:
    """A settings file with every source configured, and the CLI run in this process."""

    def __init__(self, root: Path, capsys, **values: str):
        self.root = root
        self.capsys = capsys
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / "notes.txt").write_text("hello\n")
        (root / "app.env").write_text("APP_TOKEN=abc\n")
        (root / "conf").mkdir(exist_ok=True)
        (root / "conf" / "app.yml").write_text("mode: prod\n")
        self.settings = {
            "BACKUP_DIR": str(root / "repo"),
            "BACKUP_CATALOG_PATH": str(root / "state" / "catalog.sqlite3"),
            "BACKUP_LOG_DIR": str(root / "logs"),
            "BACKUP_ENCRYPTION_KEY": KEY,
            "BACKUP_COMPRESSION": "zstd",
            "BACKUP_FILE_PATHS": str(self.data),
            "BACKUP_SECRET_FILES": str(root / "app.env"),
            "BACKUP_CONFIG_PATHS": str(root / "conf"),
            **values,
        }
        self.write()

    @property
    def env_file(self) -> Path:
        return self.root / "jarvis.env"

    @property
    def repo(self) -> Path:
        return Path(self.settings["BACKUP_DIR"])

    def write(self, **values: str) -> None:
        self.settings.update(values)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--env-file", str(self.env_file), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def process(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(self.env_file), *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(),
        )

    def catalog(self) -> Catalog:
        return Catalog.open(Path(self.settings["BACKUP_CATALOG_PATH"]))


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def one_clear_line(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, err)


@needs_root
def test_a_read_only_repository_serves_every_read_and_refuses_writes_clearly(
    tmp_path, isolated_env, capsys, postgres_server, redis_server
):
    database = unique_name("jarvis_ro")
    restored_db = unique_name("jarvis_ro_restored")
    seed_database(postgres_server, database, users=20, orders=40)
    redis_server.flush()
    redis_server.client().config_set("repl-diskless-sync-delay", 0)
    redis_server.client(2).mset({"ro:a": "1", "ro:b": "2"})
    site = Site(
        tmp_path,
        capsys,
        REDIS_URL=redis_server.url(),
        POSTGRES_HOST=postgres_server.host,
        POSTGRES_PORT=str(postgres_server.port),
        POSTGRES_USER=postgres_server.user,
        POSTGRES_DB=database,
    )
    try:
        with tmpfs(site.repo, "32m"):
            for kind in ("files", "secrets", "config", "redis", "postgres"):
                assert site.run("backup", kind)[0] == ExitCode.OK, kind
            with site.catalog() as catalog:
                secrets_artifact = catalog.artifacts_of(
                    catalog.get_backup_set("latest", "secrets").id
                )[0].relpath
            remount_read_only(site.repo)
            before = tree_digest(site.repo)
            redis_server.flush()

            out = tmp_path / "out"
            out.mkdir()
            reads = [
                ("list",),
                ("status",),
                ("verify", "latest"),
                ("verify", "--all"),
                ("restore", "files", "latest", "--target-dir", str(out / "files"), "--dry-run"),
                ("restore", "files", "latest", "--target-dir", str(out / "files")),
                ("restore", "secrets", "latest", "--to", str(out / "restored.env")),
                ("restore", "config", "latest", "--target-dir", str(out)),
                ("restore", "redis", "latest", "--dry-run"),
                ("restore", "redis", "latest"),
                ("restore", "postgres", "latest", "--target-db", restored_db, "--dry-run"),
                ("restore", "postgres", "latest", "--target-db", restored_db),
                ("decrypt", str(site.repo / secrets_artifact), "-o", str(out / "s.zst")),
                ("export", "files", "latest", "--tar", str(out / "files.tar.gz")),
                ("cleanup", "--dry-run"),
                ("prune", "--dry-run"),
                ("drill",),
                ("catalog", "rebuild"),
                ("repair", "--dry-run"),
                ("rekey", "--dry-run"),
            ]
            for args in reads:
                code, _, err = site.run(*args)
                assert code == ExitCode.OK, (args, err)
            assert redis_server.client(2).get("ro:b") == b"2"
            assert postgres_server.execute("SELECT count(*) FROM app.users", dbname=restored_db)
            assert (out / "restored.env").read_text() == "APP_TOKEN=abc\n"

            code, out, _ = site.run("health")
            assert code == ExitCode.FAILED
            assert f"{site.repo}: the file system is read-only" in out

            writes = [
                ("backup", "files"),
                ("backup", "secrets"),
                ("backup", "config"),
                ("backup", "redis"),
                ("backup", "postgres"),
                ("backup", "full"),
                ("cleanup",),
                ("prune",),
                ("init",),
            ]
            for args in writes:
                code, _, err = site.run(*args)
                assert code == ExitCode.FAILED, (args, err)
                one_clear_line(err, str(site.repo), "read-only")
            assert tree_digest(site.repo) == before
    finally:
        postgres_server.drop_database(database)
        postgres_server.drop_database(restored_db)


@needs_root
def test_a_full_repository_stops_each_backup_with_exit_8_an_alert_and_no_change(
    tmp_path, isolated_env, capsys, redis_server
):
    redis_server.flush()
    redis_server.client().config_set("repl-diskless-sync-delay", 0)
    site = Site(tmp_path, capsys, REDIS_URL=redis_server.url())
    with tmpfs(site.repo, "1m"):
        assert site.run("backup", "secrets")[0] == ExitCode.OK
        before = tree_digest(site.repo)
        big = os.urandom(1_500_000)  # incompressible, more than the disk holds
        (site.data / "big.bin").write_bytes(big)
        (tmp_path / "app.env").write_text(f"APP_BLOB={big.hex()}\n")
        (tmp_path / "conf" / "big.bin").write_bytes(big)
        redis_server.client().set("big", big)

        for kind in ("files", "secrets", "config", "redis"):
            code, _, err = site.run("backup", kind)
            assert code == ExitCode.NO_SPACE, (kind, err)
            one_clear_line(err, str(site.repo), "no space left")
            # No temporary, no half artifact; only the failed set's small sealed record.
            after = tree_digest(site.repo)
            assert all(after.get(name) == digest for name, digest in before.items()), kind
            assert [n for n in after if n not in before and not n.startswith("sets/")] == [], kind
        with site.catalog() as catalog:
            open_alerts = {alert.kind for alert in catalog.open_conditions("backup_failure:")}
            assert len(catalog.list_backup_sets(kind="secrets")) >= 1
    assert open_alerts == {f"backup_failure:{k}" for k in ("files", "secrets", "config", "redis")}


@pytest.mark.parametrize(
    ("variable", "below_file"),
    [
        ("BACKUP_DIR", "x/repo"),
        ("BACKUP_LOG_DIR", "x/logs"),
        ("BACKUP_CATALOG_PATH", "x/catalog.sqlite3"),
        ("BACKUP_DIR", ""),
    ],
)
def test_a_path_setting_below_a_regular_file_is_an_invalid_setting(
    tmp_path, isolated_env, capsys, variable, below_file
):
    regular = tmp_path / "plain-file"
    regular.write_text("not a folder\n")
    site = Site(tmp_path, capsys)
    site.write(**{variable: str(regular / below_file) if below_file else str(regular)})
    for args in (("list",), ("backup", "secrets"), ("config", "check")):
        code, _, err = site.run(*args)
        assert code == ExitCode.INVALID_SETTINGS, (args, err)
        assert f"{variable}: {regular}" in err and "is a file, not a folder" in err
        assert "Traceback" not in err
    assert regular.read_text() == "not a folder\n"


def test_restore_config_of_an_authentic_artifact_that_is_no_tarball_changes_nothing(
    tmp_path, isolated_env, capsys
):
    from datetime import UTC, datetime

    from engines.config import load_settings
    from engines.workspace import Workspace
    from tests.scheduling_support import add_set

    site = Site(tmp_path, capsys)
    with Workspace.open(load_settings(env_file=site.env_file)) as workspace:
        made = add_set(
            workspace,
            datetime(2026, 12, 1, tzinfo=UTC),
            kind="config",
            tier="manual",
            sources=("config",),
            payload=b"mode: prod\nthis is YAML, not a tarball\n" * 20,
        )
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.yml").write_text("kept\n")
    for dry_run in ((), ("--dry-run",)):
        code, _, err = site.run("restore", "config", made.id, "--target-dir", str(target), *dry_run)
        assert code == ExitCode.INTEGRITY, err
        one_clear_line(err, made.id, "not a readable tarball", "nothing was restored")
    assert sorted(p.name for p in target.iterdir()) == ["keep.yml"]
    assert (target / "keep.yml").read_text() == "kept\n"


def test_a_300_character_name_is_one_clear_line(tmp_path, isolated_env, capsys):
    site = Site(tmp_path, capsys)
    (site.data / ("n" * 250)).write_text("a long but legal name\n")
    assert site.run("backup", "files")[0] == ExitCode.OK
    too_long = tmp_path / ("L" * 300)

    site.write(BACKUP_FILE_PATHS=f"{site.data},{too_long}")
    code, _, err = site.run("backup", "files")
    assert code == ExitCode.FAILED
    one_clear_line(err, str(too_long), "too long")

    code, _, err = site.run("restore", "files", "latest", "--target-dir", str(too_long))
    assert code == ExitCode.FAILED
    one_clear_line(err, str(too_long), "too long")

    restored = tmp_path / "restored"
    assert site.run("restore", "files", "latest", "--target-dir", str(restored))[0] == 0
    name = "n" * 250
    assert (restored / str(site.data).lstrip("/") / name).read_text() == "a long but legal name\n"


def test_list_into_a_reader_that_stops_early_ends_quietly(tmp_path, isolated_env, capsys):
    from datetime import UTC, datetime, timedelta

    site = Site(tmp_path, capsys)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with site.catalog() as catalog:
        for number in range(1200):  # far more than a pipe holds (64 KiB)
            made = catalog.create_backup_set("secrets", created_at=start + timedelta(hours=number))
            catalog.finish_backup_set(made.id, "complete")
    for args in (("list",), ("list", "--json")):
        # `jarvis-tui list | head -1`: read one line, then close the pipe.
        child = subprocess.Popen(
            [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(site.env_file), *args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.readline()
        child.stdout.close()
        err = child.stderr.read().decode()
        assert child.wait(timeout=60) == ExitCode.FAILED, err
        assert err == "", err  # no traceback, no "Exception ignored" on the way out


BUG_SCRIPT = """
import sys
import engines.actions.verify as verb
from jarvis_tui.cli import main

def broken(*args, **kwargs):  # a programming error somewhere inside an action
    raise KeyError("sidecar_version")

verb.verify_backup = broken
sys.exit(main(sys.argv[1:]))
"""


def test_a_bug_is_one_line_pointing_at_the_log_and_exit_70(tmp_path, isolated_env, capsys):
    site = Site(tmp_path, capsys)
    assert site.run("backup", "secrets")[0] == ExitCode.OK
    result = subprocess.run(
        [sys.executable, "-c", BUG_SCRIPT, "--env-file", str(site.env_file), "verify", "latest"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert result.returncode == ExitCode.INTERNAL
    log = tmp_path / "logs" / "backup.log"
    one_clear_line(result.stderr, "unexpected error", "KeyError", "bug", str(log))
    assert "Traceback" in log.read_text() and "sidecar_version" in log.read_text()


@needs_root
def test_restores_and_decrypt_into_a_full_disk_exit_8_and_leave_no_partial_file(
    tmp_path, isolated_env, capsys
):
    site = Site(tmp_path, capsys)
    blob = os.urandom(300_000)
    (tmp_path / "app.env").write_text(f"APP_BLOB={blob.hex()}\n")
    (tmp_path / "conf" / "big.bin").write_bytes(blob * 2)
    assert site.run("backup", "secrets")[0] == ExitCode.OK
    assert site.run("backup", "config")[0] == ExitCode.OK
    with site.catalog() as catalog:
        sealed = catalog.artifacts_of(catalog.get_backup_set("latest", "secrets").id)[0]
    with tmpfs(tmp_path / "small", "200k") as small:
        (small / "keep.txt").write_text("was here before\n")
        outputs = {
            "restored.env": ("restore", "secrets", "latest", "--to", str(small / "restored.env")),
            "plain.zst": (
                "decrypt",
                str(site.repo / sealed.relpath),
                "-o",
                str(small / "plain.zst"),
            ),
        }
        for name, args in outputs.items():
            code, _, err = site.run(*args)
            assert code == ExitCode.NO_SPACE, (args, err)
            one_clear_line(err, str(small / name), "no space left")
            assert sorted(p.name for p in small.iterdir()) == ["keep.txt"]
        code, _, err = site.run("restore", "config", "latest", "--target-dir", str(small))
        assert code == ExitCode.NO_SPACE, err
        one_clear_line(err, "big.bin", "no space left", "the rest were left as they were")
        assert (small / "keep.txt").read_text() == "was here before\n"


@needs_root
def test_a_scheduled_backup_on_a_read_only_repository_fails_with_an_alert(
    tmp_path, isolated_env, capsys
):
    from datetime import timedelta

    from engines.config import load_settings
    from engines.scheduling.scheduler import Scheduler
    from tests.scheduling_support import T0, Clock

    site = Site(
        tmp_path,
        capsys,
        BACKUP_TIMEZONE="UTC",
        BACKUP_WEEKLY_ENABLED="false",
        BACKUP_MONTHLY_ENABLED="false",
        BACKUP_CLEANUP_ENABLED="false",
        BACKUP_VERIFY_RESTORE_ENABLED="false",
    )
    with tmpfs(site.repo, "4m"):
        assert site.run("init")[0] == ExitCode.OK
        remount_read_only(site.repo)
        clock = Clock(T0)
        scheduler = Scheduler(load_settings(env_file=site.env_file), clock=clock)
        assert scheduler.start(timers=False)  # the disk went read-only: still elected
        try:
            clock.set(T0 + timedelta(hours=2))
            assert len(scheduler.tick()) == 1
            catalog = scheduler.workspace.catalog
            (alert,) = catalog.open_conditions("schedule_failed:")
        finally:
            scheduler.stop(0)
    assert alert.severity == "critical"
    assert f"{site.repo}: the file system is read-only" in alert.message


@needs_root
def test_a_full_log_folder_is_one_warning_and_the_backup_goes_on(tmp_path, isolated_env, capsys):
    site = Site(tmp_path, capsys)
    with tmpfs(tmp_path / "logs", "64k") as logs:
        with open(logs / "filler", "wb", buffering=0) as filler:
            for size in (4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * size)
        result = site.process("backup", "secrets")
    assert result.returncode == ExitCode.OK, result.stderr
    *warnings, progress = result.stderr.splitlines()
    assert progress.startswith("backup secrets: ")  # the job's last progress line (piped)
    one_clear_line("\n".join(warnings), "warning", str(logs / "backup.log"), "no space left")


@needs_root
def test_a_full_catalog_disk_is_exit_8_naming_the_catalog(tmp_path, isolated_env, capsys):
    site = Site(tmp_path, capsys)
    with tmpfs(tmp_path / "state", "256k") as state:
        assert site.run("list")[0] == ExitCode.OK  # the catalog exists
        with open(state / "filler", "wb", buffering=0) as filler:
            for size in (4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * size)
        code, _, err = site.run("backup", "secrets")
        assert code == ExitCode.NO_SPACE, err
        one_clear_line(err, str(state / "catalog.sqlite3"), "its disk is full")
        assert not (site.repo / "secrets").exists() or not any((site.repo / "secrets").iterdir())
