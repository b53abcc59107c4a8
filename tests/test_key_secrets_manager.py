"""The encryption key from AWS Secrets Manager (BACKUP_ENCRYPTION_KEY_SECRET_ID), against
moto's server over HTTP on loopback (the same server as the S3 tests), the CLI in
processes of its own (each fetches the secret afresh, as a real run does)."""

import json
import socket
import subprocess

import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import KEY, OTHER_KEY, FilesEnv, child_env, make_secrets_env

SECRET_ID = "jarvis/backup-key"


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    env = make_secrets_env(tmp_path / "files")
    env.settings.pop("BACKUP_ENCRYPTION_KEY")
    env.set(BACKUP_ENCRYPTION_KEY_SECRET_ID=SECRET_ID, AWS_REGION="us-east-1")
    return env


@pytest.fixture
def aws(s3_server, monkeypatch):
    """boto3's own settings, as a host with a role would have them: the endpoint of moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    return secrets_client(s3_server)


def secrets_client(s3_server):
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=s3_server.endpoint_url,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )


def run(env: FilesEnv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*env.cli_argv(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )


def assert_never_shown(env: FilesEnv, *outputs: str) -> None:
    """Neither key, in any case, in what the processes printed or in the log."""
    logs = "".join(path.read_text() for path in (env.root / "logs").glob("*.log*"))
    for text in (*outputs, logs):
        for key in (KEY, OTHER_KEY):
            assert key not in text and key.upper() not in text


def test_the_key_from_secrets_manager_backs_up_and_restores(env, aws):
    aws.create_secret(Name=SECRET_ID, SecretString=KEY)
    check = run(env, "config", "check")
    assert check.returncode == ExitCode.OK, check.stderr
    assert f"from AWS Secrets Manager secret {SECRET_ID}, key id" in check.stdout

    backup = run(env, "backup", "secrets")
    assert backup.returncode == ExitCode.OK, backup.stderr
    (env.root / "app.env").write_text("API_TOKEN=changed\n")
    restore = run(env, "restore", "secrets", "latest", "--force")
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert (env.root / "app.env").read_text() == "API_TOKEN=first\n"

    # The backup was sealed with the secret's key: the same key given directly reads it.
    env.settings.pop("BACKUP_ENCRYPTION_KEY_SECRET_ID")
    env.set(BACKUP_ENCRYPTION_KEY=KEY)
    verify = run(env, "verify", "latest")
    assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr
    assert_never_shown(env, *(p.stdout + p.stderr for p in (check, backup, restore, verify)))


def test_previous_keys_from_a_json_secret_read_older_backups(env, aws):
    env.settings.pop("BACKUP_ENCRYPTION_KEY_SECRET_ID")
    env.set(BACKUP_ENCRYPTION_KEY=OTHER_KEY)  # the key of an older backup
    assert run(env, "backup", "secrets").returncode == ExitCode.OK
    env.settings.pop("BACKUP_ENCRYPTION_KEY")
    env.set(
        BACKUP_ENCRYPTION_KEY_SECRET_ID=SECRET_ID,
        BACKUP_ENCRYPTION_KEY_PREVIOUS_SECRET_ID="jarvis/backup-key-previous",
    )
    aws.create_secret(Name=SECRET_ID, SecretString=json.dumps({"BACKUP_ENCRYPTION_KEY": KEY}))
    aws.create_secret(
        Name="jarvis/backup-key-previous",
        SecretString=json.dumps({"BACKUP_ENCRYPTION_KEY_PREVIOUS": OTHER_KEY}),
    )
    check = run(env, "config", "check")
    assert check.returncode == ExitCode.OK, check.stderr
    assert "1 previous key(s)" in check.stdout
    verify = run(env, "verify", "latest")
    assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr
    assert_never_shown(env, check.stdout + check.stderr, verify.stdout + verify.stderr)


def one_line_error(process: subprocess.CompletedProcess) -> str:
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert "Traceback" not in process.stderr
    return lines[0]


def test_a_missing_secret_fails_in_one_line_naming_it(env, aws):
    backup = run(env, "backup", "secrets")
    assert backup.returncode == ExitCode.KEY_MISSING
    line = one_line_error(backup)
    assert SECRET_ID in line and "does not exist" in line and "create-secret" in line
    check = run(env, "config", "check")
    assert check.returncode == ExitCode.KEY_MISSING
    assert SECRET_ID in check.stderr
    assert not any(env.repo.rglob("*.enc")), "nothing is stored without the key"


def test_a_secret_that_is_no_key_is_refused_without_showing_it(env, aws):
    aws.create_secret(Name=SECRET_ID, SecretString="not-a-key-" + KEY[:20])
    backup = run(env, "backup", "secrets")
    assert backup.returncode == ExitCode.KEY_MISSING
    line = one_line_error(backup)
    assert SECRET_ID in line and "expected 64 hex characters" in line
    assert KEY[:20] not in backup.stdout + backup.stderr


def test_an_unreachable_secrets_manager_fails_in_one_line(env, aws, monkeypatch):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
    backup = run(env, "backup", "secrets")
    assert backup.returncode == ExitCode.KEY_MISSING
    line = one_line_error(backup)
    assert SECRET_ID in line and "could not be reached" in line


def test_the_key_and_its_secret_id_together_are_a_settings_problem(env, aws):
    env.set(BACKUP_ENCRYPTION_KEY=KEY)
    check = run(env, "config", "check")
    assert check.returncode == ExitCode.INVALID_SETTINGS
    assert "BACKUP_ENCRYPTION_KEY / BACKUP_ENCRYPTION_KEY_SECRET_ID: set one" in check.stderr


def test_keygen_does_not_write_a_key_beside_the_secret(env, aws):
    before = env.env_file.read_text()
    for rotate in ((), ("--rotate",)):
        keygen = run(env, "keygen", "--append-to", str(env.env_file), *rotate)
        assert keygen.returncode == ExitCode.FAILED
        assert f"BACKUP_ENCRYPTION_KEY_SECRET_ID={SECRET_ID}" in one_line_error(keygen)
    assert env.env_file.read_text() == before
