"""Settings: the guide's environment variables, validated once, all errors at once.

Precedence: the process environment, then the `.env` file (the one named with
`--env-file`, else `./.env`, else the one in the platformdirs config folder).
Every problem names the variable; secret values are never echoed.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engines.dotenv import read_env_lines
from engines.errors import SettingsError
from engines.plumbing import paths
from engines.plumbing.redaction import url_secret_parts

MASK = "****"

COMPRESSION_LEVELS = {"gzip": (0, 9, 9), "zstd": (1, 22, 3)}


class Secret:
    """A string that never shows itself in repr, str, f-strings or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class _Invalid(ValueError):
    """Raised by a parser; the message never contains a secret value."""


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise _Invalid(f"expected true or false, got {raw!r}")


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise _Invalid(f"expected a whole number from {low} to {high}, got {raw!r}") from None
        if not low <= value <= high:
            raise _Invalid(f"expected a whole number from {low} to {high}, got {value}")
        return value

    return parse


def _cron(raw: str) -> str:
    # Imported here: the scheduler library (with asyncio) costs every command's start-up
    # a tenth of a second, and only a schedule that is set needs it.
    from apscheduler.triggers.cron import CronTrigger

    expression = " ".join(raw.split())
    if len(expression.split()) != 5:
        raise _Invalid(f'expected a 5-field cron expression like "0 2 * * *", got {raw!r}')
    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        raise _Invalid(f"{raw!r} is not a valid cron expression ({exc})") from None
    return expression


def _hex_key(raw: str) -> Secret:
    key = raw.strip()
    if len(key) != 64:
        raise _Invalid(f"expected 64 hex characters, got {len(key)}")
    try:
        bytes.fromhex(key)
    except ValueError:
        raise _Invalid("expected 64 hex characters (0-9, a-f); found other characters") from None
    return Secret(key.lower())


def _hex_keys(raw: str) -> tuple[Secret, ...]:
    keys = []
    for position, part in enumerate(p for p in raw.split(",") if p.strip()):
        try:
            keys.append(_hex_key(part))
        except _Invalid as exc:
            raise _Invalid(f"key #{position + 1}: {exc}") from None
    return tuple(keys)


def _path(raw: str) -> Path:
    if not raw.strip():
        raise _Invalid("expected a folder path, got an empty value")
    return Path(raw.strip()).expanduser()


def _path_list(raw: str) -> tuple[Path, ...]:
    return tuple(Path(p.strip()).expanduser() for p in raw.split(",") if p.strip())


def _word_list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _Invalid(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _codec_level(raw: str) -> str:
    """`zstd:1`, `gzip:6` or a codec alone (its default level), as `codec:level`."""
    codec, _, level_text = raw.strip().lower().partition(":")
    if codec not in COMPRESSION_LEVELS:
        raise _Invalid(f"expected gzip or zstd, optionally with :LEVEL (zstd:1), got {raw!r}")
    low, high, default = COMPRESSION_LEVELS[codec]
    if not level_text:
        return f"{codec}:{default}"
    if not level_text.isdigit() or not low <= int(level_text) <= high:
        raise _Invalid(f"{codec} accepts levels {low} to {high}, got {level_text!r}")
    return f"{codec}:{int(level_text)}"


def _spelled(*choices: str) -> Callable[[str], str]:
    """One of `choices` in any case, returned as spelled there (S3's names are exact)."""

    def parse(raw: str) -> str:
        value = raw.strip()
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise _Invalid(f"expected one of {', '.join(choices)}, got {raw!r}")

    return parse


def _text(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


def _email(raw: str) -> str:
    value = raw.strip()
    if value.count("@") != 1 or not all(value.split("@")) or " " in value:
        raise _Invalid(f"expected an e-mail address like admin@example.com, got {value!r}")
    return value


def _url(*schemes: str, secret: bool = False) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = raw.strip()
        shown = "the value" if secret else repr(value)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            # Never urllib's own words: they quote a piece of the URL, which for a password
            # holding an unencoded / ? or # is the start of the password ("as 'sec'").
            raise _Invalid(
                f"expected a {' or '.join(schemes)} URL, got {shown}, which cannot be parsed "
                "(its port is not a number or its [IPv6] brackets do not close); characters "
                "such as / ? # @ : in a user name or password must be percent-encoded "
                "(%2F %3F %23 %40 %3A)"
            ) from None
        socket_path = parts.scheme == "unix" and parts.path  # unix:///run/redis.sock
        if parts.scheme not in schemes or not (parts.netloc or socket_path):
            raise _Invalid(f"expected a {' or '.join(schemes)} URL, got {shown}")
        return Secret(value) if secret else value

    return parse


def _browse(raw: str) -> str:
    """`s3:PREFIX`, returned as the prefix alone (`hosts/web-2`, or empty for the root)."""
    value = raw.strip()
    if not value.startswith("s3:"):
        raise _Invalid(f"expected s3:PREFIX (the other host's S3_PREFIX), got {value!r}")
    prefix = value.removeprefix("s3:").strip("/")
    parts = prefix.split("/") if prefix else []
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts) or any(
        bad in prefix for bad in ("\\", "\0")
    ):
        raise _Invalid(f"{prefix!r} is not a prefix like hosts/web-2")
    return prefix


def _timezone(raw: str) -> str:
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid(
            f"unknown time zone {value!r}; use a name like Europe/Berlin or UTC"
        ) from None
    return value


@dataclass(frozen=True)
class Variable:
    name: str
    attribute: str
    parse: Callable[[str], Any]
    default: Any
    group: str
    help: str
    secret: bool = False


def _v(name: str, parse: Callable[[str], Any], default: Any, group: str, help: str, **kw: Any):
    return Variable(name, name.lower(), parse, default, group, help, **kw)


PUSHOVER_API = "https://api.pushover.net/1/messages.json"
S3_STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
)
GUIDE_FILE_PATHS = "/tmp/jarvis-music-uploads,/tmp/jarvis-generated-music,config/"

VARIABLES: tuple[Variable, ...] = (
    _v("BACKUP_DIR", _path, None, "repository", "repository folder (default: platformdirs data)"),
    _v("BACKUP_CATALOG_PATH", _path, None, "repository", "SQLite catalog file"),
    _v(
        "BACKUP_BROWSE",
        _browse,
        None,
        "repository",
        "s3:PREFIX: browse another host's backups read-only (see catalog rebuild)",
    ),
    _v("BACKUP_LOG_DIR", _path, None, "repository", "folder for backup.log"),
    _v("BACKUP_ENCRYPTION_KEY", _hex_key, None, "encryption", "64 hex chars", secret=True),
    _v(
        "BACKUP_ENCRYPTION_KEY_PREVIOUS",
        _hex_keys,
        (),
        "encryption",
        "earlier keys, comma-separated, still used to decrypt",
        secret=True,
    ),
    _v(
        "BACKUP_ENCRYPTION_KEY_SECRET_ID",
        _text,
        None,
        "encryption",
        "AWS Secrets Manager secret holding BACKUP_ENCRYPTION_KEY instead",
    ),
    _v(
        "BACKUP_ENCRYPTION_KEY_PREVIOUS_SECRET_ID",
        _text,
        None,
        "encryption",
        "AWS Secrets Manager secret holding BACKUP_ENCRYPTION_KEY_PREVIOUS instead",
    ),
    _v("BACKUP_COMPRESSION", _choice("gzip", "zstd"), "gzip", "compression", "gzip or zstd"),
    _v(
        "BACKUP_COMPRESSION_LEVEL",
        _integer(0, 22),
        None,
        "compression",
        "gzip 0-9 (default 9), zstd 1-22 (default 3)",
    ),
    _v("BACKUP_DAILY_ENABLED", _boolean, True, "schedule", "daily full backup"),
    _v("BACKUP_DAILY_TIME", _cron, "0 2 * * *", "schedule", "cron"),
    _v("BACKUP_WEEKLY_ENABLED", _boolean, True, "schedule", "weekly full backup"),
    _v("BACKUP_WEEKLY_TIME", _cron, "0 3 * * 0", "schedule", "cron"),
    _v("BACKUP_MONTHLY_ENABLED", _boolean, True, "schedule", "monthly full backup"),
    _v("BACKUP_MONTHLY_TIME", _cron, "0 4 1 * *", "schedule", "cron"),
    _v("BACKUP_CLEANUP_ENABLED", _boolean, True, "schedule", "retention and prune"),
    _v("BACKUP_CLEANUP_TIME", _cron, "0 5 * * 0", "schedule", "cron"),
    _v("BACKUP_VERIFY_RESTORE_ENABLED", _boolean, True, "schedule", "restore drill"),
    _v("BACKUP_VERIFY_RESTORE_TIME", _cron, "0 6 * * 0", "schedule", "cron"),
    _v("BACKUP_TIMEZONE", _timezone, None, "schedule", "IANA zone (default: host)"),
    _v("BACKUP_MISFIRE_GRACE_MINUTES", _integer(0, 10080), 360, "schedule", "late runs allowed"),
    _v("BACKUP_SHUTDOWN_GRACE_SECONDS", _integer(0, 3600), 30, "schedule", "job finish on stop"),
    _v("BACKUP_RETENTION_DAILY", _integer(0, 3650), 7, "retention", "days"),
    _v("BACKUP_RETENTION_WEEKLY", _integer(0, 520), 4, "retention", "weeks"),
    _v("BACKUP_RETENTION_MONTHLY", _integer(0, 1200), 12, "retention", "months"),
    _v("S3_ENABLED", _boolean, False, "s3", "copy backups to S3"),
    _v("S3_BUCKET", _text, None, "s3", "bucket name"),
    _v("S3_ACCESS_KEY", _secret, None, "s3", "access key id", secret=True),
    _v("S3_SECRET_KEY", _secret, None, "s3", "secret access key", secret=True),
    _v("AWS_REGION", _text, "us-east-1", "s3", "region"),
    _v("S3_ENDPOINT_URL", _url("http", "https"), None, "s3", "S3-compatible endpoint"),
    _v("S3_PREFIX", _text, "", "s3", "key prefix inside the bucket"),
    _v("S3_STORAGE_CLASS", _spelled(*S3_STORAGE_CLASSES), None, "s3", "storage class of uploads"),
    _v("S3_SSE", _spelled("AES256", "aws:kms"), None, "s3", "server-side encryption"),
    _v("S3_SSE_KMS_KEY_ID", _text, None, "s3", "KMS key for S3_SSE=aws:kms"),
    _v("PUSHOVER_USER_KEY", _secret, None, "alerts", "Pushover user", secret=True),
    _v("PUSHOVER_API_TOKEN", _secret, None, "alerts", "Pushover app token", secret=True),
    _v(
        "SLACK_WEBHOOK_URL",
        _url("https", "http", secret=True),
        None,
        "alerts",
        "Slack incoming webhook",
        secret=True,
    ),
    _v("NOTIFICATION_EMAIL", _email, None, "alerts", "alert recipient"),
    _v("SMTP_HOST", _text, "localhost", "alerts", "mail relay"),
    _v("SMTP_PORT", _integer(1, 65535), 25, "alerts", "mail relay port"),
    _v("SMTP_USER", _text, None, "alerts", "mail relay user"),
    _v("SMTP_PASSWORD", _secret, None, "alerts", "mail relay password", secret=True),
    _v("SMTP_FROM", _email, None, "alerts", "sender address"),
    _v(
        "BACKUP_MAX_AGE_HOURS",
        _integer(1, 24 * 90),
        25,
        "alerts",
        "alert when the newest good backup is older",
    ),
    _v("BACKUP_MIN_FREE_PERCENT", _integer(0, 99), 10, "alerts", "low disk space below this"),
    _v("BACKUP_ALERT_REMINDER_HOURS", _integer(1, 720), 24, "alerts", "repeat open alerts"),
    _v("BACKUP_SKIP_ALERT_AFTER", _integer(1, 1000), 3, "alerts", "skipped runs in a row"),
    _v("PUSHOVER_API_URL", _url("https", "http"), PUSHOVER_API, "alerts", "Pushover endpoint"),
    _v(
        "DATABASE_URL",
        _url("postgresql", "postgres", secret=True),
        None,
        "sources",
        "PostgreSQL URL (overrides POSTGRES_*)",
        secret=True,
    ),
    _v("POSTGRES_HOST", _text, None, "sources", "PostgreSQL host"),
    _v("POSTGRES_PORT", _integer(1, 65535), 5432, "sources", "PostgreSQL port"),
    _v("POSTGRES_USER", _text, None, "sources", "PostgreSQL user"),
    _v("POSTGRES_PASSWORD", _secret, None, "sources", "PostgreSQL password", secret=True),
    _v("POSTGRES_DB", _text, None, "sources", "PostgreSQL database"),
    _v(
        "REDIS_URL",
        _url("redis", "rediss", "unix", secret=True),
        None,
        "sources",
        "Redis URL",
        secret=True,
    ),
    _v("BACKUP_FILE_PATHS", _path_list, None, "sources", "folders to back up, comma-separated"),
    _v("BACKUP_FILE_EXCLUDES", _word_list, ("*.tmp", "*.cache"), "sources", "glob patterns"),
    _v("BACKUP_SECRET_FILES", _path_list, (Path(".env"),), "sources", "secret files"),
    _v("BACKUP_CONFIG_PATHS", _path_list, (), "sources", "configuration files/folders"),
    _v("VERIFY_RESTORE", _boolean, False, "verification", "restore-test each PostgreSQL backup"),
    # `restore full` runs these around the restore; unset, it prints the step for the operator.
    _v("JARVIS_STOP_COMMAND", _text, None, "application", "shell command stopping the app"),
    _v("JARVIS_START_COMMAND", _text, None, "application", "shell command starting the app"),
    # WAL only: a fast codec keeps archiving ahead of a busy server (the guide's gzip-9 would not).
    _v("BACKUP_WAL_COMPRESSION", _codec_level, "zstd:1", "pitr", "WAL codec:level"),
    _v("BACKUP_WAL_PUSH_TIMEOUT", _integer(1, 3600), 120, "pitr", "seconds per wal-push"),
    _v("BACKUP_WAL_ASYNC", _boolean, True, "pitr", "wal-push through a background worker"),
    _v("BACKUP_WAL_PUSH_PROCESSES", _integer(1, 16), 2, "pitr", "WAL files pushed at once"),
    _v("BACKUP_PITR_ARCHIVE_TIMEOUT", _integer(1, 86400), 60, "pitr", "archive_timeout seconds"),
    # Scheduled backups of this tier and above also take a base backup when the server
    # archives into this repository through wal-push (asked at each run); off: never.
    _v(
        "BACKUP_PITR_BASE_SCHEDULE",
        _choice("daily", "weekly", "monthly", "off"),
        "daily",
        "pitr",
        "scheduled base backups: daily, weekly, monthly or off",
    ),
    # Archive lag that alerts: WAL files waiting (64 segments: 1 GiB) or the oldest one's wait.
    _v("BACKUP_WAL_LAG_ALERT_SEGMENTS", _integer(1, 1_000_000), 64, "pitr", "WAL files waiting"),
    _v("BACKUP_WAL_LAG_ALERT_SECONDS", _integer(1, 604800), 300, "pitr", "seconds WAL waits"),
    # Segments wal-fetch keeps fetched and checked ahead of recovery (pg_wal/jarvis-fetch/).
    _v("BACKUP_WAL_PREFETCH", _integer(0, 64), 8, "pitr", "WAL segments fetched ahead"),
    # `jarvis-tui serve` refuses to start with a token shorter than 32 characters.
    _v("JARVIS_API_TOKEN", _secret, None, "api", "REST API bearer token", secret=True),
)

SECRET_NAMES = frozenset(v.name for v in VARIABLES if v.secret)


@dataclass(frozen=True)
class Settings:
    """The effective, validated settings. Attribute names are the variables, lowercased."""

    values: Mapping[str, Any]
    origins: Mapping[str, str]
    env_file: Path | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    def __getattr__(self, attribute: str) -> Any:
        # Only settings names resolve here; dunders (pickle's probes) and `values` itself
        # before it exists must fail normally instead of recursing.
        if attribute.startswith("__") or attribute == "values":
            raise AttributeError(attribute)
        try:
            return self.values[attribute]
        except KeyError:
            raise AttributeError(attribute) from None

    @property
    def repository_dir(self) -> Path:
        return self.values["backup_dir"] or paths.default_repository_dir()

    @property
    def catalog_path(self) -> Path:
        """This host's catalog; while browsing, the browsed prefix's own one beside it."""
        if self.browsing:
            return paths.browse_catalog_path(self.own_catalog_path, self.browse_prefix)
        return self.own_catalog_path

    @property
    def own_catalog_path(self) -> Path:
        return self.values["backup_catalog_path"] or paths.default_catalog_path()

    @property
    def browsing(self) -> bool:
        """BACKUP_BROWSE is set: another host's backups, read-only, in a catalog of their own."""
        return self.values.get("backup_browse") is not None

    @property
    def browse_prefix(self) -> str:
        return self.values.get("backup_browse") or ""

    @property
    def log_dir(self) -> Path:
        return self.values["backup_log_dir"] or paths.default_log_dir()

    @property
    def compression_level(self) -> int:
        chosen = self.values["backup_compression_level"]
        return COMPRESSION_LEVELS[self.backup_compression][2] if chosen is None else chosen

    @property
    def wal_codec(self) -> tuple[str, int]:
        """BACKUP_WAL_COMPRESSION as (codec, level)."""
        codec, level = self.values["backup_wal_compression"].split(":")
        return codec, int(level)

    @property
    def postgres_configured(self) -> bool:
        return self.database_url is not None or any(
            self.values[name] for name in ("postgres_host", "postgres_db", "postgres_user")
        )

    @property
    def redis_configured(self) -> bool:
        return self.redis_url is not None

    @property
    def file_paths(self) -> tuple[Path, ...]:
        chosen = self.values["backup_file_paths"]
        return chosen if chosen is not None else _path_list(GUIDE_FILE_PATHS)

    def secret_values(self) -> list[str]:
        """Every secret's plain value, for log redaction."""
        found: list[str] = []
        for variable in VARIABLES:
            value = self.values.get(variable.attribute)
            items = value if isinstance(value, tuple) else (value,)
            found.extend(item.reveal() for item in items if isinstance(item, Secret))
        # Keys are kept lower-case; a .env may spell them in capitals.
        keys = [self.values.get("backup_encryption_key"), *self.backup_encryption_key_previous]
        found.extend(key.reveal().upper() for key in keys if isinstance(key, Secret))
        found.extend(_url_secret_parts(self))
        return [value for value in found if value]

    def display_rows(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, where it came from) with every secret masked."""
        effective = {
            "backup_dir": self.repository_dir,
            "backup_catalog_path": self.catalog_path,
            "backup_log_dir": self.log_dir,
            "backup_compression_level": self.compression_level,
            "backup_file_paths": self.file_paths,
        }
        return [
            (
                v.name,
                display_value(effective.get(v.attribute, self.values[v.attribute]), v),
                self.origins.get(v.name, "default"),
            )
            for v in VARIABLES
        ]


def _url_secret_parts(settings: Settings) -> list[str]:
    """Passwords and query tokens of the URLs; for the webhook, its path too (Slack's
    path is the credential, and a server may echo it back in an error)."""
    found = []
    for name in ("database_url", "redis_url", "slack_webhook_url", "s3_endpoint_url"):
        value = settings.values.get(name)
        url = value.reveal() if isinstance(value, Secret) else value
        if url:
            found.extend(url_secret_parts(url, path_is_secret=name == "slack_webhook_url"))
    return found


def display_value(value: Any, variable: Variable) -> str:
    if value is None or value == ():
        return "(not set)"
    if variable.secret:
        return MASK
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def find_env_file(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    for candidate in ((cwd or Path.cwd()) / ".env", paths.default_env_file()):
        if candidate.is_file():
            return candidate
    return None


def _path_problem(path: Path, *, folder: bool) -> str | None:
    """Why `path` can never be used as a folder (or, `folder` False, a file); None when
    it can, or when nothing along it exists yet (it will be created)."""
    for candidate in (path, *path.parents):
        try:
            is_dir = candidate.is_dir()
            exists = is_dir or candidate.exists()
        except OSError:  # unreadable: the command that uses it says so
            return None
        if not exists:
            continue
        if candidate == path:
            if folder and not is_dir:
                return f"{path} is a file, not a folder; name a folder"
            if not folder and is_dir:
                return f"{path} is a folder; name the file to use"
            return None
        if not is_dir:
            return f"{path} is below {candidate}, which is a file, not a folder; correct the path"
        return None
    return None


def _path_checks(values: dict[str, Any], problems: list[str]) -> None:
    for name, folder in (
        ("BACKUP_DIR", True),
        ("BACKUP_LOG_DIR", True),
        ("BACKUP_CATALOG_PATH", False),
    ):
        path = values[name.lower()]
        problem = None if path is None else _path_problem(path, folder=folder)
        if problem:
            problems.append(f"{name}: {problem}")


def _cross_checks(values: dict[str, Any], problems: list[str]) -> None:
    _path_checks(values, problems)
    codec = values["backup_compression"]
    level = values["backup_compression_level"]
    if codec and level is not None:
        low, high, _ = COMPRESSION_LEVELS[codec]
        if not low <= level <= high:
            problems.append(
                f"BACKUP_COMPRESSION_LEVEL: {codec} accepts {low} to {high}, got {level}"
            )
    if values["s3_enabled"]:
        # Without keys boto3's own credential chain applies (instance role, profile).
        if values["s3_bucket"] is None:
            problems.append("S3_BUCKET: required when S3_ENABLED=true")
        if (values["s3_access_key"] is None) != (values["s3_secret_key"] is None):
            problems.append(
                "S3_ACCESS_KEY / S3_SECRET_KEY: set both, or neither to use the host's AWS "
                "credentials (instance role, profile)"
            )
    for name in ("backup_encryption_key", "backup_encryption_key_previous"):
        if values[name] and values[f"{name}_secret_id"]:
            problems.append(
                f"{name.upper()} / {name.upper()}_SECRET_ID: set one of them (the key itself, "
                "or the AWS Secrets Manager secret holding it), not both"
            )
    if values["backup_browse"] is not None and not values["s3_bucket"]:
        problems.append("BACKUP_BROWSE: needs S3_BUCKET (the bucket the other host copies to)")
    if values["s3_sse_kms_key_id"] and values["s3_sse"] != "aws:kms":
        problems.append("S3_SSE_KMS_KEY_ID: used only with S3_SSE=aws:kms; set that or remove it")
    if bool(values["pushover_user_key"]) != bool(values["pushover_api_token"]):
        problems.append(
            "PUSHOVER_USER_KEY / PUSHOVER_API_TOKEN: set both to send Pushover alerts, or neither"
        )


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    *,
    strict: bool = True,
) -> Settings:
    """Validate every variable. With `strict`, raise SettingsError listing all problems;
    otherwise return defaults for the invalid ones and the problems alongside."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    file_values: dict[str, str] = {}
    chosen_file = find_env_file(env_file)
    if chosen_file is not None:
        try:
            file_values, line_problems = read_env_lines(chosen_file)
        except SettingsError as exc:
            line_problems = exc.problems
        problems.extend(line_problems)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for variable in VARIABLES:
        if variable.name in environ:
            raw, origin = environ[variable.name], "environment"
        elif variable.name in file_values:
            raw, origin = file_values[variable.name], str(chosen_file)
        else:
            values[variable.attribute] = variable.default
            continue
        origins[variable.name] = origin
        if not raw.strip() and variable.default is not None:
            values[variable.attribute] = variable.default
            continue
        try:
            values[variable.attribute] = variable.parse(raw) if raw.strip() else None
        except _Invalid as exc:
            problems.append(f"{variable.name}: {exc}")
            values[variable.attribute] = variable.default
    _cross_checks(values, problems)
    if problems and strict:
        raise SettingsError(problems)
    return Settings(values, origins, chosen_file, tuple(problems))
