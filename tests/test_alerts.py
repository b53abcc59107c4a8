"""Alerts delivered to real local receivers: HTTP (Pushover, Slack shapes) and SMTP."""

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest

from engines.alerts import AlertDispatcher
from engines.alerts.channels import configured_channels
from engines.catalog import Catalog
from engines.catalog.times import utc_now
from engines.joblog import register_secrets
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.scheduling_support import T0, Clock, make_settings, write_env_file
from tests.support.smtp import SmtpServer

USER_KEY = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
API_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
SLACK_SECRET_PATH = "/services/T000/B000/XXXXSECRETXXXX"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def alert_env(tmp_path: Path, isolated_env, webhook_receiver, smtp_server):
    variables = {
        "PUSHOVER_USER_KEY": USER_KEY,
        "PUSHOVER_API_TOKEN": API_TOKEN,
        "PUSHOVER_API_URL": webhook_receiver.url("/1/messages.json"),
        "SLACK_WEBHOOK_URL": webhook_receiver.url(SLACK_SECRET_PATH),
        "NOTIFICATION_EMAIL": "ops@example.com",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_FROM": "backup@example.com",
    }
    settings = make_settings(tmp_path, **variables)
    register_secrets(settings.secret_values())
    return settings, variables


def by_path(requests):
    return {request.path: request for request in requests}


def test_an_alert_reaches_pushover_slack_and_email_in_their_shapes(
    alert_env, webhook_receiver, smtp_server
):
    settings, _ = alert_env
    with Catalog.open(settings.catalog_path) as catalog:
        dispatcher = AlertDispatcher(catalog, settings, clock=Clock(T0))
        alert_id = dispatcher.notify(
            "backup_failure:redis", "critical", "redis: connection refused"
        )

        requests = by_path(webhook_receiver.wait_for_requests(2))
        pushover = requests["/1/messages.json"]
        assert pushover.method == "POST"
        assert pushover.headers["content-type"] == "application/x-www-form-urlencoded"
        form = pushover.form()
        assert form["token"] == API_TOKEN and form["user"] == USER_KEY
        assert form["priority"] == "1"
        assert "backup_failure:redis" in form["title"]
        assert form["message"] == "redis: connection refused"

        slack = requests[SLACK_SECRET_PATH]
        assert slack.headers["content-type"] == "application/json"
        assert "redis: connection refused" in slack.json()["text"]
        assert "CRITICAL" in slack.json()["text"]

        mail = smtp_server.wait_for_messages(1)[0]
        assert mail.rcpt_tos == ["ops@example.com"]
        assert mail.mail_from == "backup@example.com"
        assert "backup_failure:redis" in mail.message["Subject"]
        assert "redis: connection refused" in mail.message.get_content()

        stored = catalog.get_alert(alert_id)
        assert set(stored.delivery) == {"pushover", "slack", "email"}
        assert all(state.startswith("sent") for state in stored.delivery.values())
        assert stored.at == T0


def test_a_dead_channel_does_not_block_the_others(tmp_path, isolated_env, webhook_receiver):
    webhook_receiver.respond_with(500, b'{"status": 0, "errors": ["application token is invalid"]}')
    settings = make_settings(
        tmp_path,
        PUSHOVER_USER_KEY=USER_KEY,
        PUSHOVER_API_TOKEN=API_TOKEN,
        PUSHOVER_API_URL=webhook_receiver.url("/1/messages.json"),
        SLACK_WEBHOOK_URL=f"http://127.0.0.1:{closed_port()}{SLACK_SECRET_PATH}",
        NOTIFICATION_EMAIL="ops@example.com",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(closed_port()),
    )
    register_secrets(settings.secret_values())
    with Catalog.open(settings.catalog_path) as catalog:
        dispatcher = AlertDispatcher(catalog, settings)
        alert_id = dispatcher.notify("low_disk_space", "warning", "3% free")
        delivery = catalog.get_alert(alert_id).delivery
    assert delivery["pushover"].startswith("failed: HTTP 500")
    assert "application token is invalid" in delivery["pushover"]
    assert delivery["slack"] == "failed: cannot connect: Connection refused"
    assert delivery["email"].startswith("failed: cannot reach SMTP server 127.0.0.1:")
    assert API_TOKEN not in str(delivery) and "SECRET" not in str(delivery)


def test_a_stalled_channel_costs_only_its_timeout(tmp_path, isolated_env, webhook_receiver):
    settings = make_settings(
        tmp_path,
        SLACK_WEBHOOK_URL=webhook_receiver.url("/slow"),
        PUSHOVER_USER_KEY=USER_KEY,
        PUSHOVER_API_TOKEN=API_TOKEN,
        PUSHOVER_API_URL=webhook_receiver.url("/fast"),
    )
    slack, pushover = configured_channels(settings, timeout=0.5)[::-1]
    webhook_receiver.respond_with(200, b"ok", times=1, delay=3)
    with Catalog.open(settings.catalog_path) as catalog:
        dispatcher = AlertDispatcher(catalog, settings, channels=[slack, pushover])
        started = time.monotonic()
        # Slack's request goes first and stalls; Pushover's answers at once.
        alert_id = dispatcher.notify("test", "info", "hello")
        elapsed = time.monotonic() - started
        delivery = catalog.get_alert(alert_id).delivery
    assert elapsed < 2.5
    assert {delivery["slack"], delivery["pushover"]} == {
        "failed: no answer within 0.5 s",
        "sent (HTTP 200)",
    }


def test_a_condition_alerts_once_reminds_later_and_sends_a_recovery(
    alert_env, webhook_receiver, smtp_server
):
    settings, _ = alert_env
    clock = Clock(T0)
    with Catalog.open(settings.catalog_path) as catalog:
        dispatcher = AlertDispatcher(catalog, settings, clock=clock)
        kind = "missing_backup:postgres"
        assert dispatcher.raise_condition(kind, "critical", "no backup for 26 h") is not None
        clock.advance(hours=1)
        assert dispatcher.raise_condition(kind, "critical", "no backup for 27 h") is None
        clock.advance(hours=23)
        reminder = dispatcher.raise_condition(kind, "critical", "no backup for 50 h")
        assert reminder is not None
        assert catalog.get_alert(reminder).message == "still unresolved: no backup for 50 h"
        assert [a.kind for a in catalog.open_conditions("missing_backup:")] == [kind]

        recovery = dispatcher.clear_condition(kind, "postgres backed up again")
        assert recovery is not None and catalog.get_alert(recovery).severity == "info"
        assert dispatcher.clear_condition(kind, "again") is None
        assert catalog.open_conditions() == []
        assert dispatcher.raise_condition(kind, "critical", "missing again") is not None

    # raised, reminder, recovery, raised again: four alerts on every channel
    assert len(webhook_receiver.wait_for_requests(8)) == 8
    subjects = [m.message["Subject"] for m in smtp_server.wait_for_messages(4)]
    assert sum("resolved" in subject for subject in subjects) == 1


def test_alerts_other_engines_record_are_delivered_from_the_outbox(alert_env, webhook_receiver):
    settings, _ = alert_env
    with Catalog.open(settings.catalog_path) as catalog:
        catalog.record_alert("critical", "verification", "restore drill failed: 3 rows missing")
        dispatcher = AlertDispatcher(catalog, settings)
        delivered = dispatcher.deliver_pending()
        assert [a.kind for a in delivered] == ["verification"]
        assert dispatcher.deliver_pending() == []  # claimed once, never sent twice
        alert = catalog.list_alerts()[0]
        assert set(alert.delivery) == {"pushover", "slack", "email"}
    texts = [r.form().get("message") or r.json()["text"] for r in webhook_receiver.requests]
    assert all("3 rows missing" in text for text in texts) and len(texts) == 2


def test_without_channels_the_alert_is_still_recorded(tmp_path, isolated_env):
    settings = make_settings(tmp_path)
    with Catalog.open(settings.catalog_path) as catalog:
        alert_id = AlertDispatcher(catalog, settings).notify("low_disk_space", "warning", "2%")
        assert catalog.get_alert(alert_id).delivery == {"none": "no alert channel is configured"}


def test_cli_alerts_test_reports_each_channel(
    tmp_path, alert_env, webhook_receiver, smtp_server, capsys
):
    _, variables = alert_env
    variables = {**variables, "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{closed_port()}/x/SECRET"}
    env_file = write_env_file(tmp_path, **variables)

    assert main(["--env-file", str(env_file), "alerts", "test"]) == ExitCode.FAILED
    output = capsys.readouterr()
    lines = {line.split()[0]: line for line in output.out.splitlines() if line.strip()}
    assert lines["pushover"].split()[1] == "sent"
    assert lines["email"].split()[1] == "sent"
    assert "failed" in lines["slack"] and "Connection refused" in lines["slack"]
    assert "SECRET" not in output.out + output.err
    assert smtp_server.wait_for_messages(1)[0].message["Subject"].endswith("test")

    assert main(["--env-file", str(env_file), "alerts", "list"]) == ExitCode.OK
    listing = capsys.readouterr().out
    assert "test" in listing and "slack: failed" in listing


def test_cli_alerts_test_without_channels_says_what_to_set(tmp_path, isolated_env, capsys):
    env_file = write_env_file(tmp_path)
    assert main(["--env-file", str(env_file), "alerts", "test"]) == ExitCode.FAILED
    assert "SLACK_WEBHOOK_URL" in capsys.readouterr().err


def test_cli_alerts_list_says_when_in_words(tmp_path, isolated_env, capsys):
    env_file = write_env_file(tmp_path, BACKUP_TIMEZONE="UTC")
    settings = make_settings(tmp_path, BACKUP_TIMEZONE="UTC")
    with Catalog.open(settings.catalog_path) as catalog:
        at = utc_now() - timedelta(hours=3, minutes=10)
        catalog.queue_alert("critical", "backup_failure:postgres", "backup postgres failed", at)
    assert main(["--env-file", str(env_file), "alerts", "list"]) == ExitCode.OK
    (line, delivery) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{at:%H:%M} ") and "(3 h 10 min ago)  critical" in line, line
    assert line.endswith("backup_failure:postgres: backup postgres failed")
    assert at.isoformat()[:16] not in line and delivery.strip() == "pending"


@pytest.mark.parametrize(("password", "outcome"), [("right-pw", "sent"), ("wrong-pw", "failed")])
def test_email_logs_in_to_the_relay_and_a_refused_login_is_reported(
    tmp_path, isolated_env, password, outcome
):
    with SmtpServer(auth=("mailer", "right-pw")) as relay:
        relay.start()
        settings = make_settings(
            tmp_path,
            NOTIFICATION_EMAIL="ops@example.com",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(relay.port),
            SMTP_USER="mailer",
            SMTP_PASSWORD=password,
        )
        register_secrets(settings.secret_values())
        with Catalog.open(settings.catalog_path) as catalog:
            alert_id = AlertDispatcher(catalog, settings).notify("test", "info", "hello")
            delivery = catalog.get_alert(alert_id).delivery
        assert delivery["email"].startswith(outcome)
        if outcome == "sent":
            assert relay.wait_for_messages(1)[0].message.get_content().strip() == "hello"
        else:
            assert "refused SMTP_USER's login (535)" in delivery["email"]
            assert relay.messages == []
        assert password not in json.dumps(delivery)


def test_a_test_alert_says_it_is_a_test_not_resolved(alert_env, webhook_receiver, smtp_server):
    settings, _ = alert_env
    with Catalog.open(settings.catalog_path) as catalog:
        AlertDispatcher(catalog, settings, clock=Clock(T0)).send_test()
    slack = by_path(webhook_receiver.wait_for_requests(2))[SLACK_SECRET_PATH].json()["text"]
    subject = smtp_server.wait_for_messages(1)[0].message["Subject"]
    for words in (slack, subject):
        assert "this is a test" in words
        assert "resolved" not in words
    assert slack.startswith(":bell:")
