"""The test harness itself: every throwaway server really serves, and really goes away."""

import json
import os
import smtplib
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import platformdirs
import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.s3 import S3Server
from tests.support.smtp import SmtpServer
from tests.support.webhook import WebhookReceiver

MACHINE_SERVICE_PORTS = {5432, 6379}


def _process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def test_postgres_answers_queries_on_its_own_port(postgres_server: PostgresServer):
    assert postgres_server.port not in MACHINE_SERVICE_PORTS
    with psycopg.connect(postgres_server.dsn()) as conn:
        row = conn.execute("SELECT current_user, current_setting('data_directory')").fetchone()
        assert row == (postgres_server.user, str(postgres_server.data_dir))
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('wal_level', 'archive_mode', 'max_wal_senders', 'server_encoding', 'TimeZone')"
            ).fetchall()
        )
    assert settings == {
        "wal_level": "replica",
        "archive_mode": "on",
        "max_wal_senders": "4",
        "server_encoding": "UTF8",
        "TimeZone": "UTC",
    }


def test_postgres_runs_unprivileged_when_tests_run_as_root(postgres_server: PostgresServer):
    assert postgres_server.pid is not None
    if os.geteuid() == 0:
        assert postgres_server.account is not None
        assert _process_uid(postgres_server.pid) == postgres_server.account.uid != 0
    else:
        assert _process_uid(postgres_server.pid) == os.geteuid()


def test_postgres_databases_come_and_go(postgres_server: PostgresServer):
    postgres_server.create_database("harness check")
    postgres_server.execute("CREATE TABLE t (v text)", dbname="harness check")
    postgres_server.execute("INSERT INTO t VALUES (%s)", ("é",), dbname="harness check")
    with psycopg.connect(postgres_server.url("harness check")) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("é",)]
    postgres_server.drop_database("harness check")
    names = postgres_server.execute("SELECT datname FROM pg_database")
    assert ("harness check",) not in names


def test_client_tools_reach_the_server_through_env(postgres_server: PostgresServer, tmp_path: Path):
    env = {**os.environ, **postgres_server.env()}
    psql = subprocess.run(
        [postgres_server.binary("psql"), "-XAtc", "SELECT 40 + 2"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert psql.stdout.strip() == "42"
    # Replication connections are allowed: what point-in-time recovery needs.
    subprocess.run(
        [
            postgres_server.binary("pg_basebackup"),
            "-D",
            str(tmp_path / "base"),
            "-X",
            "fetch",
            "-c",
            "fast",
        ],
        env=env,
        capture_output=True,
        check=True,
    )
    assert (tmp_path / "base" / "PG_VERSION").is_file()


def test_postgres_survives_a_kill_and_restarts_on_the_same_data():
    server = PostgresServer()
    try:
        server.start()
        port, first_pid = server.port, server.pid
        server.execute("CREATE TABLE survivor (id int)")
        server.execute("INSERT INTO survivor VALUES (1), (2)")

        server.kill()
        assert not server.running
        assert not Path(f"/proc/{first_pid}").exists()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.dsn(), connect_timeout=2)

        server.start()
        assert (server.port, server.pid != first_pid) == (port, True)
        assert server.execute("SELECT count(*) FROM survivor") == [(2,)]
        server.stop()
        server.start()
        assert server.execute("SELECT count(*) FROM survivor") == [(2,)]
    finally:
        server.close()
    assert not server.base_dir.exists()
    assert not server.running


def test_a_copied_data_directory_starts_as_its_own_server(
    postgres_server: PostgresServer, tmp_path: Path
):
    postgres_server.execute("CREATE TABLE IF NOT EXISTS copied (v int)")
    postgres_server.execute("INSERT INTO copied VALUES (7)")
    subprocess.run(
        [
            postgres_server.binary("pg_basebackup"),
            "-D",
            str(tmp_path / "base"),
            "-X",
            "stream",
            "-c",
            "fast",
        ],
        env={**os.environ, **postgres_server.env()},
        capture_output=True,
        check=True,
    )
    with PostgresServer(data_source=tmp_path / "base") as copy:
        assert copy.port != postgres_server.port
        assert (7,) in copy.execute("SELECT v FROM copied")
        archive = copy.execute("SHOW archive_command")[0][0]
        assert str(copy.wal_archive_dir) in archive


def test_redis_sets_and_gets(redis_server: RedisServer):
    assert redis_server.port not in MACHINE_SERVICE_PORTS
    with redis.Redis.from_url(redis_server.url(db=3)) as client:
        client.set("harness", b"\x00bytes", ex=60)
        assert client.get("harness") == b"\x00bytes"
        assert 0 < client.ttl("harness") <= 60
        assert client.config_get("save") == {"save": ""}
    with redis_server.client(db=3) as client:
        assert client.get("harness") == b"\x00bytes"
    redis_server.flush()
    with redis_server.client(db=3) as client:
        assert client.get("harness") is None


def test_redis_with_a_password_refuses_anonymous_clients():
    with RedisServer(password="s3cret/pass") as server:
        with (
            redis.Redis(server.host, server.port, retry=Retry(NoBackoff(), 0)) as anonymous,
            pytest.raises(redis.AuthenticationError),
        ):
            anonymous.set("k", "v")
        with redis.Redis.from_url(server.url()) as client:
            assert client.ping()
        pid = server.pid
        server.kill()
        assert pid is not None and not Path(f"/proc/{pid}").exists()


def test_s3_stores_and_returns_objects_over_http(s3_server: S3Server):
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    bucket = s3_server.create_bucket("harness-bucket")
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="a/b.bin", Body=b"payload")
    assert client.get_object(Bucket=bucket, Key="a/b.bin")["Body"].read() == b"payload"
    shared = client.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "a/b.bin"})
    assert shared.startswith(s3_server.endpoint_url)
    with urllib.request.urlopen(shared, timeout=10) as response:
        assert response.read() == b"payload"


def test_s3_starts_every_test_without_buckets(s3_server: S3Server):
    assert s3_server.client().list_buckets()["Buckets"] == []
    s3_server.create_bucket("left-behind")
    s3_server.reset()
    assert s3_server.client().list_buckets()["Buckets"] == []


def _mail(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "backup@example.test"
    message["To"] = "ops@example.test"
    message["Subject"] = subject
    message.set_content("Backup failed: postgres")
    return message


def test_smtp_server_receives_mail(smtp_server: SmtpServer):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(_mail("[jarvis] backup failed"))
    [mail] = smtp_server.wait_for_messages(1)
    assert mail.rcpt_tos == ["ops@example.test"]
    assert mail.message["Subject"] == "[jarvis] backup failed"
    assert "postgres" in mail.message.get_content()


def test_smtp_server_can_require_authentication():
    with SmtpServer(auth=("alerts", "pw")) as server:
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as client,
            pytest.raises(smtplib.SMTPSenderRefused),
        ):
            client.send_message(_mail("anonymous"))
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("alerts", "wrong")
            client.login("alerts", "pw")
            client.send_message(_mail("signed in"))
        assert [m.message["Subject"] for m in server.wait_for_messages(1)] == ["signed in"]


def _post_json(url: str, payload: object) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_webhook_receiver_records_posts(webhook_receiver: WebhookReceiver):
    assert _post_json(webhook_receiver.url("/slack"), {"text": "backup ok"}) == 200
    [received] = webhook_receiver.wait_for_requests(1)
    assert (received.method, received.path) == ("POST", "/slack")
    assert received.headers["content-type"] == "application/json"
    assert received.json() == {"text": "backup ok"}


def test_webhook_receiver_fails_on_request(webhook_receiver: WebhookReceiver):
    webhook_receiver.respond_with(503, b"try later", times=1)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post_json(webhook_receiver.url(), {"attempt": 1})
    assert refused.value.code == 503
    assert _post_json(webhook_receiver.url(), {"attempt": 2}) == 200
    form = urllib.request.Request(webhook_receiver.url("/1/messages.json"), data=b"token=t&msg=hi")
    urllib.request.urlopen(form, timeout=10).close()
    received = webhook_receiver.wait_for_requests(3)
    assert [r.json()["attempt"] for r in received[:2]] == [1, 2]
    assert received[2].form() == {"token": "t", "msg": "hi"}


def test_webhook_receiver_can_stall(webhook_receiver: WebhookReceiver):
    webhook_receiver.respond_with(200, delay=2.0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        urllib.request.urlopen(webhook_receiver.url(), data=b"{}", timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_isolated_env_hides_the_real_user(request: pytest.FixtureRequest, monkeypatch):
    for name in ("BACKUP_DIR", "S3_BUCKET", "DATABASE_URL", "AWS_PROFILE", "PGHOST"):
        monkeypatch.setenv(name, "from the real user")
    env = request.getfixturevalue("isolated_env")
    leaked = [n for n in os.environ if n.startswith(("BACKUP_", "S3_", "AWS_", "PG", "DATABASE"))]
    assert leaked == []
    assert Path.home() == env.home
    assert Path(platformdirs.user_config_dir("jarvis-backup")).is_relative_to(env.home)
    assert Path(platformdirs.user_data_dir("jarvis-backup")).is_relative_to(env.home)
    assert Path(platformdirs.user_log_dir("jarvis-backup")).is_relative_to(env.home)
    assert Path.cwd() == env.cwd


def test_the_session_runs_in_utc():
    assert os.environ["TZ"] == "UTC"
    assert datetime.now().astimezone().utcoffset().total_seconds() == 0
