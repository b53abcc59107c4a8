from pathlib import Path

import pytest

from engines.config import MASK, Secret, load_settings
from engines.dotenv import parse_value, read_env_file
from engines.errors import SettingsError

KEY = "ab" * 32
OTHER_KEY = "cd" * 32


@pytest.fixture(autouse=True)
def no_stray_env_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_guide_env_block_parses_with_inline_comments(tmp_path):
    env_file = write_env(
        tmp_path,
        f"""# Backup Configuration
BACKUP_DIR=/var/backups/jarvis
BACKUP_ENCRYPTION_KEY={KEY}

# Backup Schedule
BACKUP_DAILY_ENABLED=true
BACKUP_DAILY_TIME="0 2 * * *"  # 2 AM daily
BACKUP_WEEKLY_ENABLED=true
BACKUP_WEEKLY_TIME="0 3 * * 0"  # 3 AM Sunday
BACKUP_MONTHLY_ENABLED=true
BACKUP_MONTHLY_TIME="0 4 1 * *"  # 4 AM 1st of month
BACKUP_CLEANUP_ENABLED=true
BACKUP_CLEANUP_TIME="0 5 * * 0"  # 5 AM Sunday

S3_ENABLED=true
S3_BUCKET=jarvis-backups
S3_ACCESS_KEY=your-access-key
S3_SECRET_KEY=your-secret-key
AWS_REGION=us-east-1

BACKUP_RETENTION_DAILY=7      # Keep daily backups for 7 days
BACKUP_RETENTION_WEEKLY=4     # Keep weekly backups for 4 weeks
BACKUP_RETENTION_MONTHLY=12   # Keep monthly backups for 12 months
PUSHOVER_USER_KEY=your-key
PUSHOVER_API_TOKEN=your-token
SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/xyz
NOTIFICATION_EMAIL=admin@jarvis.ai
""",
    )
    settings = load_settings({}, env_file)
    assert settings.repository_dir == Path("/var/backups/jarvis")
    assert settings.backup_encryption_key.reveal() == KEY
    assert settings.backup_daily_time == "0 2 * * *"
    assert settings.backup_monthly_time == "0 4 1 * *"
    assert settings.backup_retention_daily == 7
    assert settings.backup_retention_monthly == 12
    assert settings.s3_enabled is True
    assert settings.s3_secret_key.reveal() == "your-secret-key"
    assert settings.notification_email == "admin@jarvis.ai"
    assert settings.compression_level == 9
    assert settings.backup_compression == "gzip"


def test_environment_wins_over_env_file(tmp_path):
    env_file = write_env(tmp_path, "BACKUP_RETENTION_DAILY=7\n")
    settings = load_settings({"BACKUP_RETENTION_DAILY": "3"}, env_file)
    assert settings.backup_retention_daily == 3
    assert dict((n, o) for n, _, o in settings.display_rows())["BACKUP_RETENTION_DAILY"] == (
        "environment"
    )


def test_every_problem_reported_at_once_naming_the_variable(tmp_path):
    secret_fragment = "deadbeefcafe"
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "BACKUP_ENCRYPTION_KEY": secret_fragment,
                "BACKUP_DAILY_TIME": "0 25 * * *",
                "BACKUP_WEEKLY_TIME": "every sunday",
                "BACKUP_RETENTION_DAILY": "-1",
                "BACKUP_DAILY_ENABLED": "perhaps",
                "BACKUP_COMPRESSION": "lz4",
                "NOTIFICATION_EMAIL": "not-an-address",
                "BACKUP_TIMEZONE": "Mars/Olympus",
            },
            None,
        )
    problems = caught.value.problems
    assert "BACKUP_ENCRYPTION_KEY: expected 64 hex characters, got 12" in problems
    named = {problem.split(":")[0] for problem in problems}
    assert named == {
        "BACKUP_ENCRYPTION_KEY",
        "BACKUP_DAILY_TIME",
        "BACKUP_WEEKLY_TIME",
        "BACKUP_RETENTION_DAILY",
        "BACKUP_DAILY_ENABLED",
        "BACKUP_COMPRESSION",
        "NOTIFICATION_EMAIL",
        "BACKUP_TIMEZONE",
    }
    assert secret_fragment not in str(caught.value)


def test_secrets_never_echoed_in_errors_or_display(tmp_path):
    password = "s3cr3t-pa55"
    bad_key = "zz" * 32
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "BACKUP_ENCRYPTION_KEY": bad_key,
                "DATABASE_URL": f"mysql://u:{password}@h/db",
                "SLACK_WEBHOOK_URL": f"ftp://x:{password}@hooks",
            },
            None,
        )
    text = str(caught.value)
    assert bad_key not in text and password not in text
    assert "DATABASE_URL" in text and "SLACK_WEBHOOK_URL" in text

    settings = load_settings(
        {
            "BACKUP_ENCRYPTION_KEY": KEY,
            "BACKUP_ENCRYPTION_KEY_PREVIOUS": OTHER_KEY,
            "DATABASE_URL": f"postgresql://jarvis:{password}@db/jarvis",
            "POSTGRES_PASSWORD": password,
        },
        None,
    )
    shown = repr(settings.display_rows()) + repr(settings) + str(settings.values)
    for secret in (KEY, OTHER_KEY, password):
        assert secret not in shown
    assert set(settings.secret_values()) >= {KEY, OTHER_KEY, password}
    assert str(settings.backup_encryption_key) == MASK


def test_cross_checks(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "BACKUP_COMPRESSION": "gzip",
                "BACKUP_COMPRESSION_LEVEL": "15",
                "S3_ENABLED": "true",
                "PUSHOVER_USER_KEY": "u",
            },
            None,
        )
    problems = caught.value.problems
    assert "BACKUP_COMPRESSION_LEVEL: gzip accepts 0 to 9, got 15" in problems
    assert "S3_BUCKET: required when S3_ENABLED=true" in problems
    assert any(p.startswith("PUSHOVER_USER_KEY / PUSHOVER_API_TOKEN") for p in problems)
    zstd = load_settings({"BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "15"}, None)
    assert zstd.compression_level == 15
    assert load_settings({"BACKUP_COMPRESSION": "zstd"}, None).compression_level == 3


def test_non_strict_returns_problems_and_defaults():
    settings = load_settings({"BACKUP_RETENTION_WEEKLY": "many"}, None, strict=False)
    assert settings.backup_retention_weekly == 4
    assert settings.problems == (
        "BACKUP_RETENTION_WEEKLY: expected a whole number from 0 to 520, got 'many'",
    )


def test_defaults_come_from_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    settings = load_settings({}, None)
    assert settings.repository_dir.is_relative_to(tmp_path / "data")
    assert settings.catalog_path.is_relative_to(tmp_path / "data")
    assert settings.file_paths[0] == Path("/tmp/jarvis-music-uploads")
    assert settings.backup_file_excludes == ("*.tmp", "*.cache")
    assert not settings.postgres_configured and not settings.redis_configured


def test_malformed_env_line_reported_by_position_without_content(tmp_path):
    env_file = write_env(tmp_path, f'BACKUP_DIR=/x\nBACKUP_ENCRYPTION_KEY="{KEY}\nOK=1\n')
    with pytest.raises(SettingsError) as caught:
        read_env_file(env_file)
    assert f"{env_file}:2:" in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"0 2 * * *"  # 2 AM daily', "0 2 * * *"),
        ("7      # Keep daily backups", "7"),
        ("'single # quoted'", "single # quoted"),
        ("value#not-a-comment", "value#not-a-comment"),
        ('"line\\nbreak"', "line\nbreak"),
        ("", ""),
        ('"unterminated', None),
        ('"a" trailing', None),
    ],
)
def test_parse_value(raw, expected):
    assert parse_value(raw) == expected


def test_secret_is_opaque():
    secret = Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == "hunter2"


def test_settings_survive_pickling_for_child_processes():
    import pickle

    settings = load_settings({"BACKUP_ENCRYPTION_KEY": KEY, "BACKUP_RETENTION_DAILY": "3"}, None)
    copy = pickle.loads(pickle.dumps(settings))
    assert copy.backup_retention_daily == 3
    assert copy.backup_encryption_key.reveal() == KEY
    with pytest.raises(AttributeError):
        _ = copy.no_such_setting


def test_s3_needs_only_a_bucket_and_checks_its_upload_settings():
    # Without keys boto3's own credential chain (an instance role, a profile) applies.
    settings = load_settings({"S3_ENABLED": "true", "S3_BUCKET": "jarvis-backups"}, None)
    assert settings.problems == ()
    assert settings.s3_access_key is None and settings.s3_storage_class is None

    chosen = load_settings(
        {
            "S3_ENABLED": "true",
            "S3_BUCKET": "jarvis-backups",
            "S3_STORAGE_CLASS": "standard_ia",
            "S3_SSE": "AWS:KMS",
            "S3_SSE_KMS_KEY_ID": "alias/jarvis",
        },
        None,
    )
    assert (chosen.s3_storage_class, chosen.s3_sse) == ("STANDARD_IA", "aws:kms")
    assert chosen.s3_sse_kms_key_id == "alias/jarvis"

    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "S3_ENABLED": "true",
                "S3_BUCKET": "jarvis-backups",
                "S3_ACCESS_KEY": "AKIAEXAMPLE",
                "S3_STORAGE_CLASS": "COLD",
                "S3_SSE": "rot13",
                "S3_SSE_KMS_KEY_ID": "alias/jarvis",
            },
            None,
        )
    problems = caught.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("S3_STORAGE_CLASS: expected one of STANDARD, STANDARD_IA")
    assert problems[0].endswith("got 'COLD'")
    assert problems[1] == "S3_SSE: expected one of AES256, aws:kms, got 'rot13'"
    assert problems[2].startswith("S3_ACCESS_KEY / S3_SECRET_KEY: set both, or neither")
    assert problems[3] == (
        "S3_SSE_KMS_KEY_ID: used only with S3_SSE=aws:kms; set that or remove it"
    )


def test_a_huge_file_named_as_settings_is_one_problem_not_millions(tmp_path):
    """A log named by mistake took 46 s and 870 MB to report its 2 million lines one by
    one (and the console's reload dialog drew them all)."""
    log = tmp_path / "backup.log"
    log.write_text("12:00 not a setting\n" * 60_000)  # over 1 MiB
    with pytest.raises(SettingsError) as refused:
        read_env_file(log)
    assert refused.value.problems == [
        f"{log}: larger than 1 MiB, too large for a .env file; is this the settings file?"
    ]
    many = tmp_path / "many.env"
    many.write_text("BACKUP_DIR=repo\n" + "junk\n" * 30)
    settings = load_settings({}, many, strict=False)
    assert len(settings.problems) == 21 and settings.repository_dir == Path("repo")
    assert settings.problems[-1] == (
        f"{many}: 10 more malformed line(s) not listed; is this the .env file?"
    )
