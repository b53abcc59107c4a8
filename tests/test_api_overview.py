"""`GET /api/backups/stats/overview`, `/api/backups/schedule/status` and `/api/health`
against a real `jarvis-tui serve`, compared with the catalog the CLI wrote and with
`status --json` / `health --json` run in a child at the same moment."""

import json
import shutil
import threading
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engines.catalog.times import utc_now
from engines.config import load_settings
from engines.monitoring.status import collect_status
from jarvis_tui.exit_codes import ExitCode
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import FilesEnv, make_secrets_env, random_text
from tests.support.processes import LOOPBACK, wait_until
from tests.support.s3_hosts import BUCKET, s3_settings
from tests.support.s3_read_only import ReadOnlyS3Proxy
from tests.support.silent_server import SilentServer

MONITORING = ("/api/backups/stats/overview", "/api/backups/schedule/status", "/api/health")


@pytest.fixture
def env(tmp_path: Path, isolated_env) -> FilesEnv:
    files = make_secrets_env(tmp_path / "files")
    for number in range(3):
        (files.data / f"f{number}.txt").write_bytes(random_text(30_000, number))
    files.set(JARVIS_API_TOKEN=TOKEN)
    return files


def _get(server: ApiServer, path: str) -> dict[str, Any]:
    with server.client() as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"{text} has no zone"
    return moment


def _cli_json(env: FilesEnv, *args: str) -> dict[str, Any]:
    result = env.cli_process(*args, "--json")
    assert result.returncode in (ExitCode.OK, ExitCode.FAILED), result.stderr
    return json.loads(result.stdout)


def test_monitoring_needs_the_token(env: FilesEnv) -> None:
    with ApiServer(env.env_file) as server, server.client(token=None) as client:
        for path in MONITORING:
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["code"] == "unauthorized"


def test_an_empty_catalog_counts_nothing_and_has_no_last_good(env: FilesEnv) -> None:
    with ApiServer(env.env_file) as server:
        overview = _get(server, "/api/backups/stats/overview")
        status = _get(server, "/api/backups/schedule/status")
    _moment(overview["checked_at"])
    assert overview["totals"] == {"sets": 0, "artifacts": 0, "stored_bytes": 0}
    assert [s["source"] for s in overview["sources"]] == ["files", "secrets"]
    for source in overview["sources"]:
        assert source["configured"] and source["too_old"]
        assert source["last_good"] is None
        assert (source["sets"], source["artifacts"], source["stored_bytes"]) == (0, 0, 0)
    assert overview["tiers"] == [] and overview["destinations"] == []
    verification = overview["verification"]
    assert set(verification.values()) == {0, None}
    repository = overview["repository"]
    assert (repository["artifacts"], repository["stored_bytes"]) == (0, 0)
    assert 0 < repository["free_bytes"] <= repository["total_bytes"]
    assert [s["last_good_backup"] for s in status["sources"]] == [None, None]
    assert all(s["last_run"] is None for s in status["schedules"])


def test_the_overview_follows_a_backup_made_while_it_serves(env: FilesEnv) -> None:
    with ApiServer(env.env_file) as server:
        before = _get(server, "/api/backups/stats/overview")
        assert env.cli("backup", "secrets") == ExitCode.OK  # another process's commit
        after = _get(server, "/api/backups/stats/overview")
    with env.workspace() as workspace:
        (backup_set,) = workspace.catalog.list_backup_sets()
    assert before["totals"]["sets"] == 0
    assert after["totals"] == {
        "sets": 1,
        "artifacts": 1,
        "stored_bytes": backup_set.stored_size,
    }
    secrets = next(s for s in after["sources"] if s["source"] == "secrets")
    assert secrets["last_good"]["set_id"] == backup_set.id


def _backups(env: FilesEnv, s3_server) -> tuple[str, str]:
    """Two files and two secrets backups copied to S3, one more files backup whose copy is
    refused, one secrets set verified and one whose artifact was damaged, then verified."""
    s3_server.create_bucket(BUCKET)
    env.set(**s3_settings(s3_server))
    for _ in range(2):
        assert env.cli("backup", "files") == ExitCode.OK
        assert env.cli("backup", "secrets") == ExitCode.OK
    with env.workspace() as workspace:
        sets = workspace.catalog.list_backup_sets()
    good, damaged = [s.id for s in sets if s.kind == "secrets"]
    assert env.cli("verify", good) == ExitCode.OK
    with env.workspace() as workspace:
        (artifact,) = workspace.catalog.artifacts_of(damaged)
    stored = env.repo / artifact.relpath
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    assert env.cli("verify", damaged) == ExitCode.INTEGRITY
    with ReadOnlyS3Proxy(s3_server.endpoint_url) as proxy:
        env.set(**s3_settings(s3_server, endpoint_url=proxy.endpoint_url))
        assert env.cli("backup", "files") == ExitCode.OK  # stored here, its copy refused
    env.set(**s3_settings(s3_server))
    return good, damaged


def test_overview_after_cli_backups_is_what_the_catalog_says(env: FilesEnv, s3_server) -> None:
    _backups(env, s3_server)
    with ApiServer(env.env_file) as server:
        overview = _get(server, "/api/backups/stats/overview")
    with env.workspace() as workspace:
        catalog = workspace.catalog
        sets = catalog.list_backup_sets()
        artifacts = [a for a in catalog.all_artifacts() if a.status == "complete"]
        last_good = catalog.last_good_backups()
        placed = catalog.placed_artifacts()
    checked_at = _moment(overview["checked_at"])

    by_source: dict[str, list] = defaultdict(lambda: [set(), 0, 0, 0])
    for artifact in artifacts:
        entry = by_source[artifact.source]
        entry[0].add(artifact.set_id)
        entry[1] += 1
        entry[2] += artifact.added_bytes
        entry[3] += artifact.plain_size or 0
    assert {s["source"] for s in overview["sources"]} == set(by_source) == {"files", "secrets"}
    for source in overview["sources"]:
        sets_of, count, stored, plain = by_source[source["source"]]
        assert (source["sets"], source["artifacts"]) == (len(sets_of), count)
        assert (source["stored_bytes"], source["plain_bytes"]) == (stored, plain)
        assert stored > 0 and plain > 0
        last = last_good[source["source"]]
        assert source["last_good"]["set_id"] == last.set_id
        assert _moment(source["last_good"]["created_at"]) == last.created_at
        age = (checked_at - last.created_at).total_seconds()
        assert source["last_good"]["age_seconds"] == pytest.approx(age, abs=1e-3)
        assert source["configured"] and not source["too_old"]

    stored_total = sum(a.added_bytes for a in artifacts)
    assert overview["totals"] == {
        "sets": len(sets),
        "artifacts": len(artifacts),
        "stored_bytes": stored_total,
    }
    assert overview["tiers"] == [
        {
            "tier": "manual",
            "sets": 5,
            "complete": 5,
            "partial": 0,
            "failed": 0,
            "running": 0,
            "stored_bytes": stored_total,
        }
    ]
    states = Counter(a.verify_state for a in artifacts)
    set_states = Counter(s.verified_state for s in sets)
    verification = overview["verification"]
    assert (verification["artifacts"], verification["sets"]) == (len(artifacts), len(sets))
    assert (
        verification["artifacts_ok"],
        verification["artifacts_failed"],
        verification["artifacts_never"],
    ) == (states["ok"], states["failed"], states[None])
    assert (verification["sets_ok"], verification["sets_failed"], verification["sets_never"]) == (
        set_states["ok"],
        set_states["failed"],
        set_states[None],
    )
    assert states["failed"] == set_states["failed"] == 1 and states["ok"] >= 1
    checks = sorted(a.verified_at for a in artifacts if a.verified_at)
    assert _moment(verification["oldest_verified_at"]) == checks[0]
    assert _moment(verification["newest_verified_at"]) == checks[-1]

    repository = overview["repository"]
    assert (repository["artifacts"], repository["stored_bytes"]) == (len(artifacts), stored_total)
    assert repository["total_bytes"] == shutil.disk_usage(env.repo).total
    assert 0 < repository["free_bytes"] <= repository["total_bytes"]

    (s3,) = overview["destinations"]
    on_s3 = {
        p.artifact_id
        for p in placed
        for c in p.copies
        if c.destination == "s3" and c.state == "stored"
    }
    assert s3["destination"] == "s3"
    assert s3["artifacts"] == len(on_s3) == len(artifacts) - 1
    assert s3["stored_bytes"] == sum(a.added_bytes for a in artifacts if a.id in on_s3)
    assert (s3["complete_sets"], s3["incomplete_sets"], s3["failed_copies"]) == (4, 1, 1)
    newest_files = next(s for s in sets if s.kind == "files")
    assert s3["newest_not_offsite"]["id"] == newest_files.id
    assert s3["newest_not_offsite"]["gaps"]


def _without(report: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in names}


def test_schedule_status_is_status_json(env: FilesEnv, s3_server) -> None:
    _backups(env, s3_server)
    with ApiServer(env.env_file) as server:
        answer = _get(server, "/api/backups/schedule/status")
        cli = _cli_json(env, "status")
        after = utc_now()
    checked_at = _moment(answer["checked_at"])
    settings = load_settings(environ={}, env_file=env.env_file)
    with env.workspace() as workspace:
        then = collect_status(settings, workspace.catalog, checked_at).to_json()
        later = collect_status(settings, workspace.catalog, after).to_json()
    # Taken at the moment the server says, the report is the same one, byte for byte.
    assert _without(answer, "checked_at") == then
    assert then["offsite"][0]["incomplete_sets"] == 1
    assert [s["last_good_backup"] for s in then["sources"]] == [
        s["last_good_backup"] for s in later["sources"]
    ]
    # The CLI ran between checked_at and `after`: what depends on the clock lies between.
    assert _without(cli, "schedules", "sources") == _without(then, "schedules", "sources")
    for in_cli, at_start, at_end in zip(
        cli["schedules"], then["schedules"], later["schedules"], strict=True
    ):
        assert _without(in_cli, "next_run") == _without(at_start, "next_run")
        assert in_cli["next_run"] in (at_start["next_run"], at_end["next_run"])
    for in_cli, at_start, at_end in zip(
        cli["sources"], then["sources"], later["sources"], strict=True
    ):
        assert _without(in_cli, "age_hours") == _without(at_start, "age_hours")
        assert at_start["age_hours"] <= in_cli["age_hours"] <= at_end["age_hours"]
    assert len(cli["schedules"]) == len(then["schedules"]) > 0


def test_health_is_health_json_with_200_when_unhealthy(env: FilesEnv) -> None:
    assert env.cli("backup", "files") == ExitCode.OK
    with ApiServer(env.env_file) as server:
        answer = _get(server, "/api/health")
        cli = _cli_json(env, "health")
    # Schedules are on and nothing runs them; secrets were never backed up.
    assert answer["healthy"] is False is cli["healthy"]
    assert [(c["name"], c["ok"]) for c in answer["checks"]] == [
        (c["name"], c["ok"]) for c in cli["checks"]
    ]
    failed = {c["name"] for c in answer["checks"] if not c["ok"]}
    assert failed == {"scheduler", "secrets backup age"}
    assert all(set(c) <= {"name", "ok", "detail", "warning"} for c in answer["checks"])


def test_the_openapi_document_declares_each_answer(env: FilesEnv) -> None:
    with ApiServer(env.env_file) as server, server.client() as client:
        document = client.get("/api/openapi.json").json()
    for path, model in zip(MONITORING, ("Overview", "ScheduleStatus", "Health"), strict=True):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert schema["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    schemas = document["components"]["schemas"]
    assert schemas["LastGood"]["properties"]["created_at"]["format"] == "date-time"


class _Request(threading.Thread):
    """One GET in its own thread and client; `answer` once joined."""

    def __init__(self, server: ApiServer, path: str) -> None:
        super().__init__(daemon=True)
        self.server, self.path = server, path
        self.answer: httpx.Response | None = None
        self.start()

    def run(self) -> None:
        with self.server.client() as client:
            self.answer = client.get(self.path)


def test_a_stuck_server_neither_stalls_other_requests_nor_piles_up_health_runs(
    env: FilesEnv,
) -> None:
    with SilentServer() as redis:
        env.set(REDIS_URL=f"redis://{LOOPBACK}:{redis.port}/0")
        with ApiServer(env.env_file) as server:
            first = _Request(server, "/api/health")
            wait_until(lambda: redis.connections > 0, timeout=60, what="the Redis probe")
            with server.client() as client:
                assert client.get("/api/live").status_code == 200
                assert client.get("/api/backups/stats/overview").status_code == 200
            assert first.is_alive()  # its probe still waits for Redis (5 s) meanwhile
            first.join()
            alone = redis.connections
            together = [_Request(server, "/api/health") for _ in range(5)]
            for request in together:
                request.join()
            assert redis.connections == 2 * alone  # the five shared one run
    for request in [first, *together]:
        assert request.answer is not None and request.answer.status_code == 200
        checks = {c["name"]: c for c in request.answer.json()["checks"]}
        assert not checks["redis reachable"]["ok"]
        assert "Redis does not answer" in checks["redis reachable"]["detail"]
