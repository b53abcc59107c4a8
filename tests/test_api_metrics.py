"""`GET /metrics` of a real server, parsed as Prometheus parses it: empty, after real CLI
backups (the values are the catalog's), a failed backup with its job, alert and failed
delivery, a damaged artifact's verification, the token, and PostgreSQL's WAL archiver
(not configured here; read from a real archiving cluster in test_pitr_metrics below)."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.metrics.collector import metrics_registry
from jarvis_tui.api.metrics.system import PITR_DEADLINE_S, PITR_TIMEOUT_S
from jarvis_tui.exit_codes import ExitCode
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import FilesEnv, make_secrets_env
from tests.support.processes import free_port
from tests.support.s3 import S3Server
from tests.support.s3_hosts import BUCKET, s3_settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SLACK_SECRET = "hV3kQ9zLw2TxRf7Yp1Nc8Bd4"
REDIS_PASSWORD = "redis-Secret-77q"


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def scrape(client: httpx.Client, **headers: str) -> tuple[Samples, httpx.Response]:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    return parse(answer.text), answer


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[f"jarvis_backup_{name}", frozenset(labels.items())]


def named(samples: Samples, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == f"jarvis_backup_{name}"}


def output_lines(server: ApiServer, text: str, count: int) -> list[str]:
    """The server's lines holding `text` once there are `count`: its output is read by a
    thread of its own, so a line logged before an answer may be read just after it."""
    deadline = time.monotonic() + 60
    while len(lines := [line for line in server.output if text in line]) < count:
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.1)
    return lines


@pytest.fixture
def env(tmp_path: Path) -> FilesEnv:
    files = make_secrets_env(tmp_path)
    (files.data / "notes.txt").write_text("hello\n" * 1000)
    config = tmp_path / "app.conf"
    config.write_text("port = 4000\n")
    files.set(JARVIS_API_TOKEN=TOKEN, BACKUP_CONFIG_PATHS=str(config))
    return files


@pytest.fixture
def server(env: FilesEnv) -> Iterator[ApiServer]:
    with ApiServer(env.env_file) as running:
        yield running


def test_an_empty_catalog_scrapes_with_every_part_read(env: FilesEnv, server: ApiServer) -> None:
    with server.client() as client:
        samples, answer = scrape(client)
    assert answer.headers["content-type"].startswith("text/plain; version=")
    errors = named(samples, "scrape_error")
    assert set(errors.values()) == {0.0}
    assert {dict(labels)["part"] for labels in errors} >= {"backups", "jobs", "pitr", "space"}
    assert named(samples, "last_success_timestamp_seconds") == {}
    assert named(samples, "sets") == {}
    configured = {dict(labels)["source"] for labels in named(samples, "source_configured")}
    assert configured == {"files", "secrets", "config"}
    assert value(samples, "max_age_seconds") == 25 * 3600
    assert value(samples, "pitr_watched") == 0  # no PostgreSQL: nothing to read, no pitr_up
    assert named(samples, "pitr_up") == {}
    assert value(samples, "filesystem_free_bytes", volume="repository") > 0
    assert value(samples, "filesystem_size_bytes", volume="catalog") > 0
    assert value(samples, "alerts_undelivered") == 0


def test_without_the_token_it_is_401_and_openmetrics_is_served_on_request(
    server: ApiServer,
) -> None:
    with server.client(token=None) as client:
        assert client.get("/metrics").status_code == 401
    with server.client(token="x" * 40) as client:
        assert client.get("/metrics").status_code == 401
    with server.client() as client:
        answer = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")


def test_after_cli_backups_the_values_are_the_catalogs(env: FilesEnv, server: ApiServer) -> None:
    for source in ("files", "secrets", "config"):
        assert env.cli("backup", source) == ExitCode.OK
    with server.client() as client:
        samples, _ = scrape(client)
    with env.workspace() as workspace:
        catalog = workspace.catalog
        last = catalog.last_good_backups()
        assert set(last) == {"files", "secrets", "config"}
        for source, good in last.items():
            added = sum(
                artifact.added_bytes
                for artifact in catalog.artifacts_of(good.set_id)
                if artifact.source == source and artifact.status == "complete"
            )
            assert added > 0
            when = value(samples, "last_success_timestamp_seconds", source=source)
            assert when == pytest.approx(good.created_at.timestamp(), abs=1e-3)
            assert value(samples, "last_success_size_bytes", source=source) == added
            assert value(samples, "sets", kind=source, status="complete") == 1
            assert value(samples, "last_status", kind=source, status="complete") == 1
            assert value(samples, "last_status", kind=source, status="failed") == 0
            # each artifact is read back and authenticated as it is stored: verified ok
            (artifact,) = catalog.artifacts_of(good.set_id)
            assert value(samples, "artifacts_verification", source=source, result="ok") == 1
            assert artifact.verified_at is not None
            verified = value(samples, "last_verification_timestamp_seconds", source=source)
            assert verified == pytest.approx(artifact.verified_at.timestamp(), abs=1e-3)
        jobs = {job.id: job for job in catalog.list_jobs()}
    assert value(samples, "jobs_total", kind="backup", status="succeeded") == 3 == len(jobs)
    assert value(samples, "job_duration_seconds_count", kind="backup", status="succeeded") == 3
    assert (
        value(samples, "job_duration_seconds_bucket", kind="backup", status="succeeded", le="+Inf")
        == 3
    )
    newest = jobs[max(jobs)]
    assert value(samples, "job_last_duration_seconds", kind="backup") == pytest.approx(
        (newest.finished_at - newest.started_at).total_seconds(), abs=1e-6
    )


def test_a_failed_backup_its_alert_and_a_failed_delivery_appear_without_secrets(
    env: FilesEnv, server: ApiServer
) -> None:
    dead = free_port()
    env.set(
        REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{dead}/0",
        SLACK_WEBHOOK_URL=f"http://127.0.0.1:{dead}/services/T0/B0/{SLACK_SECRET}",
    )
    assert env.cli("backup", "redis") != ExitCode.OK
    with server.client() as client:
        samples, answer = scrape(client)
    assert value(samples, "jobs_total", kind="backup", status="failed") == 1
    assert value(samples, "sets", kind="redis", status="failed") == 1
    assert value(samples, "last_status", kind="redis", status="failed") == 1
    assert (
        value(samples, "alert_active", alert="backup_failure", key="redis", severity="critical")
        == 1
    )
    assert value(samples, "alert_deliveries_failed_total", channel="slack") == 1
    assert "redis" not in {
        dict(k).get("source") for k in named(samples, "last_success_timestamp_seconds")
    }
    for secret in (SLACK_SECRET, REDIS_PASSWORD, TOKEN, env.settings["BACKUP_ENCRYPTION_KEY"]):
        assert secret not in answer.text


def test_a_damaged_artifact_counts_as_a_failed_verification(
    env: FilesEnv, server: ApiServer
) -> None:
    assert env.cli("backup", "secrets") == ExitCode.OK
    with env.workspace() as workspace:
        (artifact,) = workspace.catalog.artifacts_of(workspace.catalog.get_backup_set("latest").id)
    stored = env.repo / artifact.relpath
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    assert env.cli("verify", artifact.set_id) == ExitCode.INTEGRITY
    with env.workspace() as workspace:
        verified = workspace.catalog.get_artifact(artifact.id)
        verify = workspace.catalog.list_jobs(1)[0]
    assert verify.kind == "verify"
    assert verified.verify_state == "failed" and verified.verified_at is not None
    with server.client() as client:
        samples, _ = scrape(client)
    assert value(samples, "artifacts_verification", source="secrets", result="failed") == 1
    assert ("secrets", "ok") not in {
        (dict(k)["source"], dict(k)["result"]) for k in named(samples, "artifacts_verification")
    }
    assert value(samples, "last_verification_timestamp_seconds", source="secrets") == (
        pytest.approx(verified.verified_at.timestamp(), abs=1e-3)
    )
    assert value(samples, "jobs_total", kind=verify.kind, status=verify.status) == 1


def test_a_postgresql_that_does_not_answer_is_pitr_up_0_and_one_line(env: FilesEnv) -> None:
    password = "pg-Secret-41x"
    env.set(DATABASE_URL=f"postgresql://backup:{password}@127.0.0.1:{free_port()}/app")
    with ApiServer(env.env_file) as server, server.client() as client:
        samples, answer = scrape(client)
        again, _ = scrape(client)
    assert value(samples, "pitr_watched") == 1
    assert value(samples, "pitr_up") == value(again, "pitr_up") == 0
    assert named(samples, "pitr_wal_waiting_files") == {}
    assert set(named(samples, "scrape_error").values()) == {0.0}  # the rest is served
    assert value(samples, "source_configured", source="postgres") == 1
    lines = output_lines(server, "archiver not read", 2)
    assert len(lines) == 2  # one line per scrape
    assert "cannot connect to" in lines[0] and "Traceback" not in "".join(server.output)
    assert password not in "".join(server.output) + answer.text


def test_parts_that_cannot_be_read_are_scrape_errors_and_the_rest_is_served(
    env: FilesEnv, caplog: pytest.LogCaptureFixture
) -> None:
    with env.workspace() as workspace:
        registry = metrics_registry(ApiContext(workspace.settings, env.env_file, workspace))
        workspace.catalog.close()  # every question to the catalog now fails
        samples = parse(generate_latest(registry).decode())
    errors = {dict(labels)["part"]: v for labels, v in named(samples, "scrape_error").items()}
    assert errors == {
        "backups": 1, "jobs": 1, "verification": 1, "alerts": 1,
        "destinations": 0, "space": 0, "pitr": 0,
    }  # fmt: skip
    assert value(samples, "filesystem_free_bytes", volume="catalog") > 0
    assert named(samples, "source_configured") == {}  # a failed part yields nothing of its own
    lines = [r.getMessage() for r in caplog.records if r.name == "jarvis.api"]
    assert len(lines) == 4 and all(line.startswith("metrics: ") for line in lines)
    assert all("\n" not in line for line in lines) and "jobs not read: catalog" in "".join(lines)


def test_a_copy_destination_behind_and_caught_up(
    env: FilesEnv, isolated_env, s3_server: S3Server
) -> None:
    """A bucket that does not exist yet fails the S3 copy; once it exists `sync` stores it."""
    env.set(**s3_settings(s3_server))
    assert env.cli("backup", "files") == ExitCode.OK
    with ApiServer(env.env_file) as server, server.client() as client:
        samples, answer = scrape(client)
        assert value(samples, "sets_not_offsite", destination="s3") == 1
        assert value(samples, "copies_failed", destination="s3") == 1
        assert named(samples, "last_copy_timestamp_seconds") == {}
        assert value(samples, "alert_active", alert="upload_failure", key="s3",
                     severity="critical") == 1  # fmt: skip
        assert s3_server.secret_key not in answer.text

        s3_server.create_bucket(BUCKET)
        assert env.cli("sync") == ExitCode.OK
        samples, _ = scrape(client)
    assert value(samples, "sets_not_offsite", destination="s3") == 0
    assert value(samples, "copies_failed", destination="s3") == 0
    with env.workspace() as workspace:
        stored = workspace.catalog.last_copy_on("s3")
    assert stored is not None
    assert value(samples, "last_copy_timestamp_seconds", destination="s3") == pytest.approx(
        stored.timestamp(), abs=1e-3
    )


def test_a_postgresql_port_that_never_answers_costs_the_scrape_seconds_not_minutes(
    env: FilesEnv,
) -> None:
    """A listener that takes connections and never says a word (a hung server or proxy):
    the archiver's reading gives up after its short timeout and the scrape is served."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        port = silent.getsockname()[1]
        env.set(DATABASE_URL=f"postgresql://backup:pw-Secret-9z@127.0.0.1:{port}/app")
        with ApiServer(env.env_file) as server, server.client() as client:
            started = time.monotonic()
            samples, _ = scrape(client)
            took = time.monotonic() - started
    assert value(samples, "pitr_watched") == 1 and value(samples, "pitr_up") == 0
    assert set(named(samples, "scrape_error").values()) == {0.0}
    assert took < PITR_DEADLINE_S + 10, took  # the timeout is 2 s; the default scrape timeout 10 s
    (line,) = output_lines(server, "archiver not read", 1)
    assert f"no answer within {PITR_TIMEOUT_S} s" in line and "pw-Secret-9z" not in line
