"""`POST /api/backups/{id}/restore` against a real `jarvis-tui serve` and real backups.

Files, secrets, PostgreSQL and Redis restored into scratch targets and compared with
what was backed up; dry runs answered with their plan and changing nothing; a restore
that replaces data refused without the typed confirmation; unknown options, unknown
sets, a second restore into a target being restored (held still by SIGSTOP), and a
damaged artifact failing its job with nothing written.
"""

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from engines.catalog.rows import Job
from jarvis_tui.api.job_conflicts import backup_conflicts, restore_conflicts
from tests.support.api_server import TOKEN, ApiServer, hold_still
from tests.support.files_env import (
    FilesEnv,
    make_secrets_env,
    random_text,
    sealed_backup,
    tree_of,
)
from tests.support.pg_seed import PgCase, unique_name
from tests.support.redis_seed import RedisCase, backed_up_then_changed, fast_sync

DEADLINE_S = 120.0
FINAL = ("succeeded", "failed", "cancelled")


def wait_for_job(client: httpx.Client, job_id: int) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in FINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(0.1)


def client_of(server: ApiServer) -> httpx.Client:
    """A dry run is answered once it ended: a longer wait than the usual client's."""
    client = server.client()
    client.timeout = httpx.Timeout(DEADLINE_S)
    return client


def restore(client: httpx.Client, set_id: str, **body: object) -> httpx.Response:
    return client.post(f"/api/backups/{set_id}/restore", json=body)


def restored(client: httpx.Client, set_id: str, **body: object) -> dict:
    """A restore that must be accepted (202) and succeed: its job."""
    answer = restore(client, set_id, **body)
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == answer.json()["status_url"]
    job = wait_for_job(client, answer.json()["job_id"])
    assert job["status"] == "succeeded", job
    return job


class Served:
    def __init__(self, env: FilesEnv, server: ApiServer, files_set: str, secrets_set: str):
        self.env, self.server = env, server
        self.files_set, self.secrets_set = files_set, secrets_set
        self.client = client_of(server)

    def jobs(self) -> int:
        with self.env.workspace() as workspace:
            return len(workspace.catalog.list_jobs())


def _latest(env: FilesEnv, kind: str) -> str:
    with env.workspace() as workspace:
        return workspace.catalog.get_backup_set("latest", kind).id


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = make_secrets_env(tmp_path, token="s3cr3t-value")
    (env.data / "notes").mkdir()
    (env.data / "notes" / "a.txt").write_bytes(random_text(300_000, seed=3))
    (env.data / "b.bin").write_bytes(os.urandom(70_000))
    (env.data / "empty").write_bytes(b"")
    env.set(JARVIS_API_TOKEN=TOKEN)
    assert env.cli("backup", "files") == 0
    assert env.cli("backup", "secrets") == 0
    server = ApiServer(env.env_file).start()
    try:
        yield Served(env, server, _latest(env, "files"), _latest(env, "secrets"))
    finally:
        server.close()


def _below(target: Path, folder: Path) -> Path:
    return target / folder.relative_to("/")


def test_files_restore_into_a_scratch_folder_is_byte_for_byte(served: Served, tmp_path):
    target = tmp_path / "scratch"
    job = restored(served.client, served.files_set, type="files", target_dir=str(target))
    assert job["description"].endswith(f" into {target}")
    assert tree_of(_below(target, served.env.data)) == tree_of(served.env.data)


def test_a_dry_run_answers_its_plan_and_writes_nothing(served: Served, tmp_path):
    target = tmp_path / "scratch"
    files = restore(
        served.client, served.files_set, type="files", target_dir=str(target), dry_run=True
    )
    assert files.status_code == 200, files.text
    plan = files.json()
    assert plan["would_succeed"] and plan["error"] is None and plan["type"] == "files"
    assert any("a.txt" in line or "3 file" in line for line in plan["lines"]), plan
    assert not target.exists()
    job = served.client.get(plan["status_url"]).json()
    assert job["status"] == "succeeded" and "(dry run)" in job["description"]
    assert any(event["message"].startswith("plan: ") for event in job["log"]), job["log"]

    to = tmp_path / "restored.env"
    secrets = restore(served.client, served.secrets_set, type="secrets", to=str(to), dry_run=True)
    assert secrets.status_code == 200 and secrets.json()["would_succeed"], secrets.text
    assert "API_TOKEN" in " ".join(secrets.json()["lines"])
    assert "s3cr3t-value" not in secrets.text
    assert not to.exists()


def test_secrets_restore_to_a_new_path(served: Served, tmp_path):
    to = tmp_path / "new" / "app.env"
    to.parent.mkdir()
    restored(served.client, served.secrets_set, type="secrets", to=str(to))
    assert to.read_text() == "API_TOKEN=s3cr3t-value\n"
    assert to.stat().st_mode & 0o777 == 0o600


def test_replacing_files_where_they_were_needs_the_typed_confirmation(served: Served):
    data = served.env.data
    changed = data / "notes" / "a.txt"
    changed.write_bytes(b"changed after the backup")
    os.utime(changed, (1, 1))  # older than the backup's copy: if-newer would replace it
    before = tree_of(data)
    body = {"type": "files", "overwrite": "always"}
    for confirm, what in ((None, "missing"), ("the original location", "does not match")):
        extra = {} if confirm is None else {"confirm": confirm}
        answer = restore(served.client, served.files_set, **body, **extra)
        assert answer.status_code == 400, answer.text
        error = answer.json()
        assert error["field"] == "confirm" and error["code"] == "confirmation_required"
        assert what in error["message"]
        assert '"confirm": "the original locations"' in error["message"]
        assert tree_of(data) == before
    restored(served.client, served.files_set, **body, confirm="the original locations")
    assert changed.read_bytes() == random_text(300_000, seed=3)


def test_an_existing_file_is_replaced_only_when_its_path_is_typed(served: Served, tmp_path):
    to = tmp_path / "live.env"
    to.write_text("API_TOKEN=current\n")
    body = {"type": "secrets", "to": str(to), "force": True}
    answer = restore(served.client, served.secrets_set, **body, confirm="live.env")
    assert answer.status_code == 400 and answer.json()["field"] == "confirm", answer.text
    assert f'"confirm": "{to}"' in answer.json()["message"]
    assert to.read_text() == "API_TOKEN=current\n"
    restored(served.client, served.secrets_set, **body, confirm=str(to))
    assert to.read_text() == "API_TOKEN=s3cr3t-value\n"
    assert Path(f"{to}.bak").read_text() == "API_TOKEN=current\n"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "files", "flush": True}, "flush", "not an option of a files restore"),
        ({"type": "secrets", "target_dir": "/tmp/x"}, "target_dir", "secrets restore"),
        ({"type": "files", "overwrite": "sometimes"}, "overwrite", "never"),
        ({"type": "files", "target_dir": "restored"}, "target_dir", "not an absolute path"),
        ({"type": "secrets", "to": ""}, "to", "not an absolute path"),
        ({"type": "secrets", "to": "/tmp/a\x00b"}, "to", "NUL"),
        ({"type": "secrets", "dry_run": "yes"}, "dry_run", "boolean"),
        ({"type": "postgres", "jobs": 0}, "jobs", "greater than or equal to 1"),
        ({"type": "archive"}, "type", "postgres, redis, files, secrets, config, full"),
        ({"dry_run": True}, "type", "give the type of restore"),
        ({"type": "postgres", "target_time": "2026-01-01 00:00:00+00"}, "target_time", "pitr"),
        ({"type": "postgres", "pitr": True, "target": "immediate"}, "pgdata", "pgdata DIR"),
        (
            {"type": "files", "strip_prefix": "/tmp", "overwrite": "never"},
            "strip_prefix",
            "needs target_dir",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_field(served: Served, body, field, words):
    set_id = served.files_set
    if body.get("type") == "postgres":  # a set to name; PostgreSQL itself is not set up here
        set_id = sealed_backup(served.env, "postgres", "full", "app.dump", b"not read")
    jobs_before = served.jobs()
    answer = restore(served.client, set_id, **body)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["field"] == field and words in error["message"], error
    assert served.jobs() == jobs_before


def test_unknown_sets_and_sets_without_that_source_are_404(served: Served):
    for set_id, kind in (("no-such-set", "files"), (served.files_set, "secrets")):
        answer = restore(served.client, set_id, type=kind, dry_run=True)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", answer.text
        assert set_id in answer.json()["message"]


def test_a_set_being_deleted_is_not_restored(served: Served, tmp_path):
    with served.env.workspace() as workspace:
        workspace.catalog.mark_set_deleting(served.secrets_set)
    to = tmp_path / "restored.env"
    answer = restore(served.client, served.secrets_set, type="secrets", to=str(to))
    assert answer.status_code == 409 and "being deleted" in answer.json()["message"], answer.text
    assert not to.exists()


def with_big_file(env: FilesEnv) -> bytes:
    """Enough that a restore is still writing when it is stopped, just after its 202."""
    big = os.urandom(48 * 1024 * 1024)
    (env.data / "big.txt").write_bytes(big)
    return big


@contextmanager
def restore_held_still(
    client: httpx.Client, env: FilesEnv, set_id: str, **body: object
) -> Iterator[int]:
    """A restore accepted (202) and held still by SIGSTOP while the block runs: its job id."""
    answer = restore(client, set_id, **body)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    with env.workspace() as workspace:
        pid = workspace.catalog.get_job(job_id).pid
    hold_still(pid, env.root / "catalog.sqlite3")
    try:
        assert client.get(f"/api/jobs/{job_id}").json()["status"] == "running"
        yield job_id
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_second_restore_into_a_target_being_restored_is_409(tmp_path):
    env = make_secrets_env(tmp_path)
    big = with_big_file(env)
    env.set(JARVIS_API_TOKEN=TOKEN)
    assert env.cli("backup", "files") == 0
    set_id = _latest(env, "files")
    target, other = tmp_path / "first", tmp_path / "second"
    with ApiServer(env.env_file) as server, client_of(server) as client:
        first = {"type": "files", "target_dir": str(target)}
        with restore_held_still(client, env, set_id, **first) as job_id:
            again = restore(client, set_id, type="files", target_dir=str(target))
            assert again.status_code == 409, again.text
            assert f"job {job_id} (restore files {set_id} into {target})" in again.json()["message"]
            # Nor is a plan of a target being written; another folder is another target.
            dry = restore(client, set_id, type="files", target_dir=str(target), dry_run=True)
            assert dry.status_code == 409, dry.text
            dry = restore(client, set_id, type="files", target_dir=str(other), dry_run=True)
            assert dry.status_code == 200 and dry.json()["would_succeed"], dry.text
            elsewhere = restore(client, set_id, type="files", target_dir=str(other))
            assert elsewhere.status_code == 202, elsewhere.text
        assert wait_for_job(client, job_id)["status"] == "succeeded"
        assert wait_for_job(client, elsewhere.json()["job_id"])["status"] == "succeeded"
    for folder in (target, other):
        assert (_below(folder, env.data) / "big.txt").read_bytes() == big


def test_a_damaged_artifact_fails_the_job_and_writes_nothing(served: Served, tmp_path):
    with served.env.workspace() as workspace:
        (artifact,) = workspace.catalog.artifacts_of(served.secrets_set)
    stored = served.env.repo / artifact.relpath
    sealed = bytearray(stored.read_bytes())
    sealed[len(sealed) // 2] ^= 0x01
    stored.write_bytes(bytes(sealed))
    to = tmp_path / "restored.env"

    plan = restore(served.client, served.secrets_set, type="secrets", to=str(to), dry_run=True)
    assert plan.status_code == 200, plan.text
    assert not plan.json()["would_succeed"] and "authentic" in plan.json()["error"]

    answer = restore(served.client, served.secrets_set, type="secrets", to=str(to))
    assert answer.status_code == 202, answer.text
    job = wait_for_job(served.client, answer.json()["job_id"])
    assert job["status"] == "failed" and "authentic" in job["error"], job
    assert not to.exists() and not Path(f"{to}.bak").exists()


def test_the_openapi_document_declares_the_plan_and_the_job(served: Served):
    document = served.client.get("/api/openapi.json").json()
    answers = document["paths"]["/api/backups/{set_id}/restore"]["post"]["responses"]
    schema = {
        code: answers[code]["content"]["application/json"]["schema"]["$ref"]
        for code in ("200", "202")
    }
    assert schema == {
        "200": "#/components/schemas/DryRunReport",
        "202": "#/components/schemas/JobAccepted",
    }
    body = document["paths"]["/api/backups/{set_id}/restore"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["discriminator"]["propertyName"] == "type"


def test_postgres_restore_into_a_scratch_database(postgres_server, tmp_path):
    case = PgCase(postgres_server, tmp_path, JARVIS_API_TOKEN=TOKEN)
    try:
        assert case.cli("backup", "postgres") == 0
        with case.workspace() as workspace:
            set_id = workspace.catalog.get_backup_set("latest", "postgres").id
        scratch = unique_name("jarvis_api")
        source_before = case.fingerprint()
        with ApiServer(case.env_file) as server, client_of(server) as client:
            plan = restore(client, set_id, type="postgres", target_db=scratch, dry_run=True)
            assert plan.status_code == 200 and plan.json()["would_succeed"], plan.text
            assert scratch in plan.json()["target"]
            assert scratch not in case.databases()

            replace = {"type": "postgres", "drop_existing": True}
            refused = restore(client, set_id, **replace)
            assert refused.status_code == 400 and refused.json()["field"] == "confirm"
            assert f'"confirm": "{case.source}"' in refused.json()["message"]
            into_live = restore(client, set_id, type="postgres", target_db=case.source)
            assert into_live.status_code == 400 and into_live.json()["field"] == "confirm"

            restored(client, set_id, type="postgres", target_db=scratch, jobs=2)
        assert case.fingerprint(scratch) == source_before
        assert case.fingerprint() == source_before
    finally:
        case.cleanup()


def test_redis_restore_into_a_spare_server(redis_server, spare_redis_server, tmp_path):
    case = RedisCase(tmp_path, redis_server)
    backed_up_then_changed(redis_server, case, "backup", "redis")
    with case.workspace() as workspace:
        set_id = workspace.catalog.get_backup_set("latest", "redis").id
    spare = spare_redis_server
    fast_sync(spare)
    spare.flush()
    spare.client().set("kept", "the spare's own")
    spare.client().set("stray", "the spare's stray")
    case.point_at(spare, JARVIS_API_TOKEN=TOKEN)
    address = f"{spare.host}:{spare.port}"
    with ApiServer(case.env_file) as server, client_of(server) as client:
        plan = restore(client, set_id, type="redis", flush=True, dry_run=True)
        assert plan.status_code == 200 and plan.json()["would_succeed"], plan.text
        assert spare.client().get("stray") == b"the spare's stray"

        for confirm in (None, "localhost"):
            extra = {} if confirm is None else {"confirm": confirm}
            refused = restore(client, set_id, type="redis", flush=True, **extra)
            assert refused.status_code == 400 and refused.json()["field"] == "confirm"
            assert f'"confirm": "{address}"' in refused.json()["message"], refused.text
            assert spare.client().get("kept") == b"the spare's own"

        restored(client, set_id, type="redis", flush=True, confirm=address)
    assert spare.client().get("kept") == b"from the backup"
    assert spare.client().get("stray") is None
    assert redis_server.client().get("kept") == b"changed later"  # the source untouched


def test_the_redis_confirmation_never_shows_the_password(served: Served, tmp_path):
    password = "redis-Pa55word-x9"
    served.env.set(REDIS_URL=f"redis://:{password}@127.0.0.1:6390/2")
    set_id = sealed_backup(served.env, "redis", "rdb", "dump.rdb", b"not read")
    with ApiServer(served.env.env_file) as server, client_of(server) as client:
        answer = restore(client, set_id, type="redis", replace=True)
        assert answer.status_code == 400 and answer.json()["field"] == "confirm", answer.text
        assert '"confirm": "127.0.0.1:6390"' in answer.json()["message"]
        wrong = restore(client, set_id, type="redis", replace=True, confirm=password)
        assert wrong.status_code == 400, wrong.text
        for text in (answer.text, wrong.text):
            assert password not in text


def test_a_complete_system_restore(served: Served, tmp_path):
    env = served.env
    config = tmp_path / "app-config"
    config.mkdir()
    (config / "app.yaml").write_text("debug: false\n")
    env.set(BACKUP_CONFIG_PATHS=str(config))
    assert env.cli("backup", "full") == 0
    set_id = _latest(env, "full")
    (env.data / "b.bin").write_bytes(b"changed after the backup")
    (config / "app.yaml").write_text("debug: true\n")
    with ApiServer(env.env_file) as server, client_of(server) as client:
        plan = restore(client, set_id, type="full", dry_run=True)
        assert plan.status_code == 200, plan.text
        steps = {step["title"]: step["state"] for step in plan.json()["steps"]}
        assert steps["stop the application"] == "would" and plan.json()["would_succeed"]
        assert (config / "app.yaml").read_text() == "debug: true\n"

        unstopped = restore(client, set_id, type="full", confirm="restore")
        assert unstopped.status_code == 400 and unstopped.json()["field"] == "app_stopped"
        unconfirmed = restore(client, set_id, type="full", app_stopped=True)
        assert unconfirmed.status_code == 400, unconfirmed.text
        assert '"confirm": "restore"' in unconfirmed.json()["message"]
        assert (config / "app.yaml").read_text() == "debug: true\n"

        restored(client, set_id, type="full", app_stopped=True, confirm="restore")
    assert (config / "app.yaml").read_text() == "debug: false\n"
    assert (env.data / "b.bin").read_bytes() != b"changed after the backup"


def test_a_point_in_time_restore_asks_for_its_folders_name(served: Served, tmp_path):
    set_id = sealed_backup(served.env, "postgres", "full", "app.dump", b"not a base backup")
    folder = tmp_path / "pg-restored"
    body = {"type": "postgres", "pitr": True, "target": "immediate", "pgdata": str(folder)}
    answer = restore(served.client, set_id, **body)
    assert answer.status_code == 400 and answer.json()["field"] == "confirm", answer.text
    assert '"confirm": "pg-restored"' in answer.json()["message"]
    plan = restore(served.client, set_id, **body, dry_run=True)
    assert plan.status_code == 200 and not plan.json()["would_succeed"], plan.text
    assert plan.json()["error"]
    assert not folder.exists()


def _job(kind: str, description: str) -> Job:
    return Job(1, kind, description, "running", 1, None, None, None, 0, None, "", None, False, None)


@pytest.mark.parametrize(
    ("kind", "target", "running", "refused"),
    [
        ("files", "/a", ("restore", "restore files s1 into /a"), True),
        ("files", "/a", ("restore", "restore files s1 into /b"), False),
        ("files", "/a", ("restore", "restore files s1"), True),  # the CLI's: no target named
        ("files", "/a", ("restore", "restore files s1 into /a (dry run)"), False),
        ("files", "/a", ("restore", "restore redis s2 into /a"), False),
        ("files", "/a", ("backup", "backup files"), False),
        ("files", "/a", ("restore", "restore full s3"), True),
        ("files", "/a", ("restore", "restore full s3 --dry-run"), False),
        ("full", "the whole system", ("backup", "backup postgres (full)"), True),
        ("full", "the whole system", ("restore", "restore secrets s4 into /x"), True),
        ("full", "the whole system", ("verify", "verify s4"), False),
    ],
)
def test_which_running_jobs_a_restore_waits_for(kind, target, running, refused):
    assert restore_conflicts(kind, target)(_job(*running)) is refused


@pytest.mark.parametrize(
    ("running", "refused"),
    [
        (("backup", "backup files"), True),
        (("backup", "backup full"), True),
        (("restore", "restore full s3"), True),
        (("restore", "restore full s3 --dry-run"), False),
        (("restore", "restore files s1 into /a"), False),
        (("verify", "verify s4"), False),
    ],
)
def test_which_running_jobs_a_backup_waits_for(running, refused):
    assert backup_conflicts(_job(*running)) is refused


def test_a_backup_during_a_complete_system_restore_is_409(tmp_path):
    env = make_secrets_env(tmp_path)
    config = tmp_path / "app-config"
    config.mkdir()
    (config / "app.yaml").write_text("debug: false\n")
    big = with_big_file(env)
    env.set(JARVIS_API_TOKEN=TOKEN, BACKUP_CONFIG_PATHS=str(config))
    assert env.cli("backup", "full") == 0
    set_id = _latest(env, "full")
    with ApiServer(env.env_file) as server, client_of(server) as client:
        full = {"type": "full", "app_stopped": True, "confirm": "restore"}
        with restore_held_still(client, env, set_id, **full) as job_id:
            backup = client.post("/api/backups", json={"type": "files"})
            assert backup.status_code == 409, backup.text
            assert f"job {job_id} (restore full {set_id})" in backup.json()["message"]
        assert wait_for_job(client, job_id)["status"] == "succeeded"
        after = client.post("/api/backups", json={"type": "files"})
        assert after.status_code == 202, after.text
        assert wait_for_job(client, after.json()["job_id"])["status"] == "succeeded"
    assert (env.data / "big.txt").read_bytes() == big
