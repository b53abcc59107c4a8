"""Single-source backups alert like the parts of `backup full`, and no secret leaves.

Real processes throughout: the CLI (or the console's job process) against real Redis
and PostgreSQL servers, and a real webhook receiver as the Slack channel.
"""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engines.actions.verbs import Request
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.job_process import ActionSpec, run_in_process
from tests.scheduling_support import write_env_file
from tests.support.files_env import REPO_ROOT, child_env
from tests.support.processes import free_port
from tests.support.redis_seed import fast_sync

SLACK_TOKEN = "hV3kQ9zLw2TxRf7Yp1Nc8Bd4"
SLACK_PATH = f"/services/T0AB12CD3/B0EF45GH6/{SLACK_TOKEN}"
DB_PASSWORD = "pg-Secret-41x"


def cli(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(env_file), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )


def slack_texts(receiver) -> list[str]:
    return [r.json()["text"] for r in receiver.requests if r.path == SLACK_PATH]


def test_a_failed_redis_backup_alerts_and_the_next_success_clears_it(
    tmp_path, isolated_env, webhook_receiver, redis_server
):
    fast_sync(redis_server)
    slack = webhook_receiver.url(SLACK_PATH)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    env_file = write_env_file(tmp_path, SLACK_WEBHOOK_URL=slack, REDIS_URL=dead)

    failed = cli(env_file, "backup", "redis")
    assert failed.returncode != ExitCode.OK, failed.stdout
    assert "Traceback" not in failed.stderr
    texts = slack_texts(webhook_receiver)
    assert len(texts) == 1
    assert "CRITICAL" in texts[0] and "backup_failure:redis" in texts[0]

    # A second failure is the same open condition: no new message until the reminder.
    assert cli(env_file, "backup", "redis").returncode != ExitCode.OK
    assert len(slack_texts(webhook_receiver)) == 1

    env_file = write_env_file(tmp_path, SLACK_WEBHOOK_URL=slack, REDIS_URL=redis_server.url())
    done = cli(env_file, "backup", "redis")
    assert done.returncode == ExitCode.OK, done.stderr
    texts = slack_texts(webhook_receiver)
    assert len(texts) == 2
    assert "resolved" in texts[1] and "backup_failure:redis" in texts[1]
    assert "backed up successfully again" in texts[1]


def test_a_failed_postgres_backup_alerts_without_its_password(
    tmp_path, isolated_env, webhook_receiver
):
    url = f"postgresql://backup:{DB_PASSWORD}@127.0.0.1:{free_port()}/jarvis"
    env_file = write_env_file(
        tmp_path, SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK_PATH), DATABASE_URL=url
    )
    failed = cli(env_file, "backup", "postgres")
    assert failed.returncode != ExitCode.OK
    (text,) = slack_texts(webhook_receiver)
    assert "backup_failure:postgres" in text and "CRITICAL" in text
    assert DB_PASSWORD not in text + failed.stdout + failed.stderr


def test_the_consoles_back_up_now_of_one_source_alerts_too(
    tmp_path, isolated_env, webhook_receiver
):
    env_file = write_env_file(
        tmp_path,
        SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK_PATH),
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    outcome = run_in_process(
        env_file, ActionSpec("backup", Request(kind="redis")), lambda update: None
    )
    assert outcome.error
    (text,) = slack_texts(webhook_receiver)
    assert "backup_failure:redis" in text and "CRITICAL" in text


def _catalog_dump(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return "\n".join(connection.iterdump())


def test_a_webhook_that_echoes_its_path_never_gets_the_token_stored_or_shown(
    tmp_path, isolated_env, webhook_receiver
):
    """Slack's URL path is its credential; a server echoing it in an error body must not
    put it in the output, the log files or any catalog row."""
    webhook_receiver.respond_with(404, b"no_service: no such hook {path}")
    redis_url = f"redis://:{DB_PASSWORD}@127.0.0.1:{free_port()}/0"
    env_file = write_env_file(
        tmp_path, SLACK_WEBHOOK_URL=webhook_receiver.url(SLACK_PATH), REDIS_URL=redis_url
    )
    results = [
        cli(env_file, "alerts", "test"),
        cli(env_file, "backup", "redis"),
        cli(env_file, "alerts", "list"),
        cli(env_file, "alerts", "list", "--json"),
    ]
    shown = "".join(result.stdout + result.stderr for result in results)
    logs = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*") if p.is_file())
    catalog = _catalog_dump(tmp_path / "state" / "catalog.sqlite3")
    assert "no_service" in catalog  # the echoed answer was stored, redacted
    for secret in (SLACK_TOKEN, SLACK_PATH, DB_PASSWORD):
        assert secret not in shown, secret
        assert secret not in logs, secret
        assert secret not in catalog, secret
    assert len(webhook_receiver.requests) == 2  # the test, then the failed backup
    listing = results[2].stdout
    assert "slack: failed" in listing and "no_service" in listing  # the reason still shows


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("connect to redis://:pw-one@db:6379/0 failed", "pw-one"),
        ("postgresql://app:pw%40two@host/db refused", "pw%40two"),
        ("GET https://example.com/hook?token=abc123xyz&x=1 -> 500", "abc123xyz"),
        (
            "POST https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/Zq9Zq9Zq9Zq9Zq9Zq9Zq9Zq9 x",
            "Zq9Z",
        ),
    ],
)
def test_the_secret_parts_of_any_url_are_masked(text, hidden):
    from engines.plumbing.redaction import redact

    masked = redact(text)
    assert hidden not in masked and "****" in masked


def test_ordinary_paths_and_settings_stay_readable():
    from engines.plumbing.redaction import redact

    for text in (
        "restored /opt/app/services/auth/config/main (mode 0600)",
        "postgresql://db.example.com:5432/jarvis?sslmode=require",
        "BACKUP_RETENTION_DAILY=7; key id c6e601217d8fafd1",
    ):
        assert redact(text) == text


def test_only_the_credentials_of_configured_urls_are_registered(isolated_env):
    from engines.config import load_settings

    settings = load_settings(
        environ={
            "BACKUP_ENCRYPTION_KEY": "AB" * 32,
            "DATABASE_URL": "postgresql://app:pw-9Xq@db/jarvis?sslmode=require&sslpassword=k3y5",
            "SLACK_WEBHOOK_URL": f"https://hooks.slack.com{SLACK_PATH}",
        }
    )
    secrets = set(settings.secret_values())
    assert {"pw-9Xq", "k3y5", SLACK_TOKEN, SLACK_PATH, "AB" * 32, "ab" * 32} <= secrets
    assert not {"require", "jarvis", "db", "services"} & secrets
