"""The complete system restore (`restore full`) and `jarvis-tui test`, against real servers.

A seeded PostgreSQL database, Redis (several databases, TTLs), a file tree, a `.env` and a
config folder are backed up with `backup full`; then the data is changed or wiped and
`restore full` must bring every part back exactly, or refuse before changing anything.
The full-system drill also wipes the host's repository and catalog and rebuilds them
from the S3 copy (moto over HTTP on loopback) before restoring.
"""

import io
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engines.config import load_settings
from engines.workspace import Workspace
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import tree_of
from tests.support.pg_seed import KEY, database_names, fingerprint, seed_database, unique_name
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.redis_seed import fingerprint as redis_fingerprint
from tests.support.redis_seed import seed as seed_redis

BUCKET = "jarvis-drill"
# A console job is a process of its own doing a whole restore or pull: on a loaded 2-core
# machine that can take minutes, so the console tests wait generously for it.
JOB_WAIT_S = 300
SECRETS = "OPENAI_API_KEY=sk-not-a-real-one\nDATABASE_PASSWORD='p@ss word'\n"


@dataclass
class System:
    """The seeded 'application host' of one test: its servers, its folders, its settings."""

    tmp: Path
    postgres: PostgresServer
    redis: RedisServer
    database: str
    settings: dict[str, str]

    @property
    def env_file(self) -> Path:
        return self.tmp / "jarvis.env"

    @property
    def uploads(self) -> Path:
        return self.tmp / "uploads"

    @property
    def dotenv(self) -> Path:
        return self.tmp / "app" / ".env"

    @property
    def config(self) -> Path:
        return self.tmp / "config"

    @property
    def service_log(self) -> Path:
        return self.tmp / "service.log"

    def set(self, **values: str) -> None:
        self.settings.update(values)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))

    def cli(self, *args: str) -> int:
        return main(["--env-file", str(self.env_file), *args])

    def workspace(self) -> Workspace:
        return Workspace.open(load_settings(env_file=self.env_file))

    def state(self) -> dict:
        """Everything the restore must bring back, as comparable values."""
        return {
            "postgres": fingerprint(self.postgres, self.database),
            "redis": redis_fingerprint(self.redis),
            "files": tree_of(self.uploads),
            "secrets": (self.dotenv.read_bytes(), oct(self.dotenv.stat().st_mode & 0o777)),
            # Content and modes: a tarball keeps times to its own precision.
            "config": {
                k: v[:2] + v[3:]  # kind, mode and content (links: kind and target)
                for k, v in tree_of(self.config).items()
                if not k.endswith(b".bak")
            },
        }

    def change_everything(self) -> None:
        self.postgres.execute("DELETE FROM public.orders WHERE id % 2 = 0", dbname=self.database)
        self.postgres.execute("UPDATE app.users SET name = 'changed'", dbname=self.database)
        self.redis.client().set("greeting", "changed")
        self.redis.client(3).delete("db3:key")
        (self.uploads / "tracks" / "a.mp3").write_bytes(b"overwritten")
        (self.uploads / "notes.txt").unlink()
        self.dotenv.write_text("OPENAI_API_KEY=changed\n")
        (self.config / "app.yaml").write_text("workers: 99\n")

    def wipe_everything(self) -> None:
        self.postgres.drop_database(self.database)
        self.redis.flush()
        shutil.rmtree(self.uploads)
        self.dotenv.unlink()
        shutil.rmtree(self.config)
        self.config.mkdir()  # the folder itself is the host's; its files are the backup's

    def service_calls(self) -> list[str]:
        if not self.service_log.exists():
            return []
        return self.service_log.read_text().split()


def _seed_files(system: System) -> None:
    tracks = system.uploads / "tracks"
    tracks.mkdir(parents=True)
    (tracks / "a.mp3").write_bytes(b"ID3" + bytes(range(256)) * 300)
    (tracks / "b.flac").write_bytes(os.urandom(0) + b"fLaC" * 5000)
    (system.uploads / "notes.txt").write_text("Grüße, ユーザー 🎵\n")
    (system.uploads / "private.key").write_text("not a real key\n")
    (system.uploads / "private.key").chmod(0o600)
    (system.uploads / "latest").symlink_to("tracks/a.mp3")
    (system.uploads / "empty").mkdir()
    system.dotenv.parent.mkdir()
    system.dotenv.write_text(SECRETS)
    system.dotenv.chmod(0o600)
    system.config.mkdir()
    (system.config / "app.yaml").write_text("workers: 4\n")
    (system.config / "nginx").mkdir()
    (system.config / "nginx" / "site.conf").write_text("server { listen 80; }\n")


@pytest.fixture
def system(tmp_path, isolated_env, postgres_server, redis_server):
    database = unique_name("jarvis_full")
    seed_database(postgres_server, database, users=120, orders=360)
    seed_redis(redis_server)
    before = database_names(postgres_server) - {database}
    host = System(tmp_path, postgres_server, redis_server, database, {})
    _seed_files(host)
    log = host.service_log
    host.set(
        BACKUP_DIR=str(tmp_path / "repo"),
        BACKUP_CATALOG_PATH=str(tmp_path / "catalog" / "catalog.sqlite3"),
        BACKUP_LOG_DIR=str(tmp_path / "logs"),
        BACKUP_ENCRYPTION_KEY=KEY,
        BACKUP_COMPRESSION="zstd",
        POSTGRES_HOST=postgres_server.host,
        POSTGRES_PORT=str(postgres_server.port),
        POSTGRES_USER=postgres_server.user,
        POSTGRES_DB=database,
        REDIS_URL=redis_server.url(),
        BACKUP_FILE_PATHS=str(host.uploads),
        BACKUP_SECRET_FILES=str(host.dotenv),
        BACKUP_CONFIG_PATHS=str(host.config),
        JARVIS_STOP_COMMAND=f"echo stop >> {log}",
        JARVIS_START_COMMAND=f"echo start >> {log}",
    )
    yield host
    for name in database_names(postgres_server) - before:
        postgres_server.drop_database(name)


def _backed_up(system: System, capsys) -> dict:
    assert system.cli("backup", "full") == ExitCode.OK, capsys.readouterr()
    capsys.readouterr()
    return system.state()


def test_restore_full_from_the_local_repository_brings_every_part_back(system, capsys):
    backed_up = _backed_up(system, capsys)
    system.change_everything()
    assert system.state() != backed_up

    code = system.cli("restore", "full", "latest")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    assert system.state() == backed_up
    assert system.service_calls() == ["stop", "start"]
    assert "the system is restored" in out
    assert "compare with the backup: done" in out
    for line in ("tables and", "keys in", "files (", "variables match", "match the archive"):
        assert line in out, line
    # The previous database is kept beside the restored one (the swap of `restore postgres`).
    kept = [n for n in database_names(system.postgres) if n.startswith(system.database + "_pre")]
    assert len(kept) == 1


def test_restore_full_dry_run_changes_nothing_and_says_every_step(system, capsys):
    _backed_up(system, capsys)
    system.change_everything()
    changed = system.state()

    code = system.cli("restore", "full", "latest", "--dry-run")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    assert system.state() == changed
    assert system.service_calls() == []
    assert "dry run: nothing was changed" in out
    for step in ("stop the application: would", "restore PostgreSQL database: would",
                 "restore Redis: would", "start the application: would"):  # fmt: skip
        assert step in out, step
    assert f"would run JARVIS_STOP_COMMAND: echo stop >> {system.service_log}" in out


def test_restore_full_refuses_a_damaged_artifact_before_changing_anything(system, capsys):
    _backed_up(system, capsys)
    system.change_everything()
    changed = system.state()
    # The configuration is restored last: damage there must still stop everything before.
    config_artifact = next((system.tmp / "repo" / "config").glob("*.enc"))
    data = bytearray(config_artifact.read_bytes())
    data[len(data) // 2] ^= 0x40
    config_artifact.write_bytes(bytes(data))

    code = system.cli("restore", "full", "latest")
    out, err = capsys.readouterr()
    assert code == ExitCode.INTEGRITY, out + err
    assert "nothing was changed and the application was not stopped" in err
    assert "config/" in err
    assert system.service_calls() == []
    assert system.state() == changed


def test_restore_full_without_a_stop_command_asks_for_confirmation(system, capsys, monkeypatch):
    _backed_up(system, capsys)
    system.settings.pop("JARVIS_STOP_COMMAND")
    system.set()
    system.change_everything()
    changed = system.state()

    assert system.cli("restore", "full", "latest") == ExitCode.USAGE  # stdin is no terminal
    _, err = capsys.readouterr()
    assert "--app-stopped" in err and "docker-compose down" in err
    assert system.state() == changed

    code = system.cli("restore", "full", "latest", "--app-stopped")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    assert "the operator confirmed that the application is stopped" in out
    assert system.service_calls() == ["start"]


def test_a_failing_stop_command_stops_the_restore_with_its_exit_code(system, capsys):
    _backed_up(system, capsys)
    system.set(JARVIS_STOP_COMMAND="echo 'compose: no such service' >&2; exit 3")
    system.change_everything()
    changed = system.state()

    assert system.cli("restore", "full", "latest") == ExitCode.FAILED
    _, err = capsys.readouterr()
    assert "JARVIS_STOP_COMMAND exited 3" in err and "no such service" in err
    assert "nothing was restored; the application may be stopped" in err
    assert system.state() == changed


def _s3_settings(s3_server) -> dict[str, str]:
    return {
        "S3_ENABLED": "true",
        "S3_BUCKET": s3_server.create_bucket(BUCKET),
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_ACCESS_KEY": s3_server.access_key,
        "S3_SECRET_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
    }


def test_full_system_drill_rebuilds_from_s3_on_a_wiped_host(system, s3_server, capsys):
    system.set(**_s3_settings(s3_server))
    backed_up = _backed_up(system, capsys)

    # The host dies: its repository, its catalog and every piece of data are gone.
    shutil.rmtree(system.tmp / "repo")
    shutil.rmtree(system.tmp / "catalog")
    system.wipe_everything()

    code = system.cli("catalog", "rebuild", "--from", "s3")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    code = system.cli("restore", "full", "latest")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    assert system.state() == backed_up
    assert system.service_calls() == ["stop", "start"]


def test_jarvis_tui_test_restores_every_part_into_scratch_targets(system, capsys):
    databases = database_names(system.postgres)
    state = system.state()

    code = system.cli("test")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    assert "every part restored and matches" in out
    for kind in ("postgres", "redis", "files", "secrets", "config"):
        assert f"ok      {kind}/" in out, kind
    assert "scratch database" in out and "scratch folder" in out
    # Everything scratch is gone; the system itself was only read.
    assert database_names(system.postgres) == databases
    assert system.state() == state
    scratch = [p for d in (system.tmp / "repo").glob(".*") if d.is_dir() for p in d.iterdir()]
    assert scratch == []
    assert {d.name for d in (system.tmp / "repo").glob(".*") if d.is_dir()} >= {
        ".restore-drill",
        ".redis-drill",
    }  # the scratch folders were there, and are gone


def test_jarvis_tui_test_fails_when_a_part_is_not_backed_up_whole(system, capsys):
    system.set(BACKUP_FILE_PATHS=f"{system.uploads},{system.tmp / 'missing'}")

    assert system.cli("test") == ExitCode.FAILED
    out, err = capsys.readouterr()
    assert "failed: files: warning" in err
    assert "test: FAILED" in out


async def test_the_console_walkthrough_runs_restore_full_as_one_job(system, capsys):
    from jarvis_tui.app import make_app
    from tests.console_fixtures import screen_words, wait_until

    backed_up = _backed_up(system, capsys)
    system.settings.pop("JARVIS_STOP_COMMAND")
    system.set()
    system.change_everything()
    changed = system.state()

    app = make_app(system.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("R", "end", "enter")  # the last choice: the complete system
        await wait_until(pilot, lambda: "press f to run all of them" in screen_words(app))
        await pilot.press("f")  # nobody said the application is stopped: nothing starts
        await wait_until(pilot, lambda: "Stop the application first" in screen_words(app))
        assert not app.runner.running_jobs()
        assert system.state() == changed

        await pilot.press("d", "f")  # step 1 done by hand, then the whole restore
        await wait_until(pilot, lambda: "Type restore to confirm" in screen_words(app))
        await pilot.press(*"restore", "enter")
        await wait_until(
            pilot, lambda: "8 Verify restoration succeeded" in screen_words(app), timeout=JOB_WAIT_S
        )
        shown = screen_words(app)
        assert "the system is restored" in shown
        assert "3 Restore PostgreSQL succeeded" in shown
        assert "7 Start services done" in shown  # by JARVIS_START_COMMAND
        assert "health checks: done" in shown
        await wait_until(pilot, lambda: not app.runner.running_jobs(), timeout=JOB_WAIT_S)
    assert system.state() == backed_up
    assert system.service_calls() == ["start"]


def test_a_cancelled_restore_full_says_what_was_restored_and_leaves_the_rest(system, capsys):
    from engines.actions.restore_full import FullRestoreOptions
    from engines.actions.verbs import Request, run_verb
    from engines.errors import JobCancelledError
    from engines.jobs import CANCEL_POLL_INTERVAL_S, JobLogged

    backed_up = _backed_up(system, capsys)
    system.change_everything()
    changed = system.state()

    with system.workspace() as workspace:

        def cancel_after_postgres(update) -> None:
            if (
                isinstance(update, JobLogged)
                and "restore PostgreSQL database: done" in update.message
            ):
                workspace.catalog.request_job_cancel(update.job_id)
                # The job looks for a cancel at most this often; it runs this listener itself.
                time.sleep(CANCEL_POLL_INTERVAL_S + 0.2)

        request = Request(reference="latest", options=FullRestoreOptions())
        with pytest.raises(JobCancelledError) as cancelled:
            run_verb(workspace, "restore-full", request, listeners=(cancel_after_postgres,))
        (job,) = [j for j in workspace.catalog.list_jobs() if j.kind == "restore"]
        assert job.status == "cancelled"
    said = str(cancelled.value)
    assert said.startswith("cancelled during restore Redis; restored so far: postgres;")
    assert "the application is left stopped" in said
    after = system.state()
    assert after["postgres"] == backed_up["postgres"]
    assert {part: after[part] for part in ("redis", "files", "secrets", "config")} == {
        part: changed[part] for part in ("redis", "files", "secrets", "config")
    }
    assert system.service_calls() == ["stop"]


async def test_the_walkthrough_download_step_pulls_the_latest_full_backup(
    system, s3_server, capsys
):
    from jarvis_tui.app import make_app
    from tests.console_fixtures import screen_words, wait_until

    system.set(**_s3_settings(s3_server))
    _backed_up(system, capsys)
    repository = system.tmp / "repo"
    artifacts = sorted(p.relative_to(repository) for p in repository.glob("*/*.enc"))
    for relpath in artifacts:  # lost here, still on S3
        (repository / relpath).unlink()

    app = make_app(system.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("R", "end", "enter")  # the last choice: the complete system
        step = "2 Download backups from S3 (if needed)"
        await wait_until(pilot, lambda: f"{step} to do" in screen_words(app))
        await pilot.press("down", "enter")
        await wait_until(
            pilot, lambda: f"{step} succeeded" in screen_words(app), timeout=JOB_WAIT_S
        )
        await wait_until(pilot, lambda: not app.runner.running_jobs(), timeout=JOB_WAIT_S)
    assert sorted(p.relative_to(repository) for p in repository.glob("*/*.enc")) == artifacts


def test_restore_full_is_refused_while_the_repository_is_locked(system, capsys):
    from engines.repository.lock import RepositoryLock

    _backed_up(system, capsys)
    system.change_everything()
    changed = system.state()

    with RepositoryLock(system.tmp / "repo", "backup full"):  # a backup running elsewhere
        code = system.cli("restore", "full", "latest")
    _, err = capsys.readouterr()
    assert code == ExitCode.LOCKED, err
    assert "backup full" in err
    assert system.service_calls() == []
    assert system.state() == changed


def test_a_difference_after_the_restore_fails_the_comparison_and_leaves_it_stopped(system, capsys):
    from engines.actions.restore_full import FullRestoreOptions
    from engines.actions.verbs import Request, run_verb
    from engines.errors import IntegrityError
    from engines.jobs import JobLogged

    _backed_up(system, capsys)
    system.change_everything()

    def meddle(update) -> None:  # between the last restore and the comparison
        if isinstance(update, JobLogged) and "restore Configuration files: done" in update.message:
            system.postgres.execute(
                "DELETE FROM public.orders WHERE id < 11", dbname=system.database
            )
            system.redis.client(3).set("db3:intruder", "x")
            (system.uploads / "tracks" / "b.flac").write_bytes(b"fLaC but not the backup's")

    with system.workspace() as workspace:
        request = Request(reference="latest", options=FullRestoreOptions())
        with pytest.raises(IntegrityError) as differs:
            run_verb(workspace, "restore-full", request, listeners=(meddle,))
    said = str(differs.value)
    assert said.startswith("compare with the backup failed: what was restored differs")
    assert "public.orders: 350 rows restored, 360 in the backup" in said
    assert "db 3: 3 keys on the server, 2 restored" in said
    assert "b.flac" in said
    assert "the application is left stopped" in said
    assert system.service_calls() == ["stop"]  # not started on a system that differs


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_restore_full_asks_whether_the_application_is_stopped(
    system, capsys, monkeypatch
):
    _backed_up(system, capsys)
    system.settings.pop("JARVIS_STOP_COMMAND")
    system.set()
    system.change_everything()
    changed = system.state()

    monkeypatch.setattr("sys.stdin", _Terminal("no\n"))
    assert system.cli("restore", "full", "latest") == ExitCode.USAGE
    out, err = capsys.readouterr()
    assert "docker-compose down" in out and "not confirmed; nothing was changed" in err
    assert system.state() == changed

    monkeypatch.setattr("sys.stdin", _Terminal("yes\n"))
    assert system.cli("restore", "full", "latest") == ExitCode.OK
    assert "the operator confirmed that the application is stopped" in capsys.readouterr().out
    assert system.service_calls() == ["start"]


def test_restore_full_names_what_it_cannot_restore_in_one_line(system, capsys):
    assert system.cli("restore", "full", "latest") == ExitCode.NOT_FOUND
    assert "no complete full backup" in capsys.readouterr().err
    assert system.cli("backup", "secrets") == ExitCode.OK
    with system.workspace() as workspace:
        (only_secrets,) = workspace.catalog.list_backup_sets()
    capsys.readouterr()
    assert system.cli("restore", "full", only_secrets.id) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert f"{only_secrets.id!r} is a secrets backup, not full" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert system.service_calls() == []


def test_an_interrupted_restore_full_says_where_it_stopped(system, capsys):
    from engines.actions.restore_full import FullRestoreOptions
    from engines.actions.verbs import Request, run_verb
    from engines.jobs import JobLogged

    backed_up = _backed_up(system, capsys)
    system.change_everything()
    said: list[str] = []

    def ctrl_c_during_redis(update) -> None:
        if isinstance(update, JobLogged):
            said.append(update.message)
            if update.message.startswith("restoring of redis"):
                raise KeyboardInterrupt

    with system.workspace() as workspace:
        request = Request(reference="latest", options=FullRestoreOptions())
        with pytest.raises(KeyboardInterrupt):
            run_verb(workspace, "restore-full", request, listeners=(ctrl_c_during_redis,))
        (job,) = [j for j in workspace.catalog.list_jobs() if j.kind == "restore"]
        assert job.status == "cancelled"
    assert any(
        line.startswith("step 5/11 restore Redis: interrupted; restored so far: postgres;")
        for line in said
    ), said
    assert system.state()["postgres"] == backed_up["postgres"]
    assert system.service_calls() == ["stop"]


def test_restore_full_of_a_partial_set_names_the_part_it_leaves_alone(system, capsys):
    system.set(BACKUP_CONFIG_PATHS=str(system.tmp / "no-such-config"))
    assert system.cli("backup", "full") == ExitCode.FAILED  # the configuration part failed
    with system.workspace() as workspace:
        (partial,) = workspace.catalog.list_backup_sets()
    assert partial.status == "partial"
    capsys.readouterr()

    assert system.cli("restore", "full", "latest") == ExitCode.NOT_FOUND  # only complete sets
    assert "no complete full backup" in capsys.readouterr().err
    code = system.cli("restore", "full", partial.id, "--dry-run")
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, out + err
    assert "Configuration files: not in this backup, left as it is" in out
    assert "restore Configuration files" not in out
