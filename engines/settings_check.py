"""The settings read as a whole: every problem at once, and what a new reading would move.

`config check` and the console's reload read the settings through `check_settings`,
so both list the same problems. The console compares its running settings with a
new reading through `moved_destinations` before it lets its scheduler write
anywhere else.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engines.config import Settings, load_settings
from engines.readiness import KEYGEN_ADVICE, readiness_problems


@dataclass(frozen=True)
class SettingsCheck:
    settings: Settings
    # Settings that do not load as written (a malformed line, a bad value): the CLI
    # refuses to run and the console keeps its last good settings.
    errors: tuple[str, ...]
    # Settings that load, but a backup would be refused or skip data.
    warnings: tuple[str, ...]

    @property
    def problems(self) -> tuple[str, ...]:
        return (*self.errors, *self.warnings)


def check_settings(
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    key_advice: str = KEYGEN_ADVICE,
) -> SettingsCheck:
    """Read the settings and collect every problem: parse errors, bad values, readiness."""
    settings = load_settings(environ, env_file, strict=False)
    warnings = tuple(readiness_problems(settings, key_advice))
    return SettingsCheck(settings, settings.problems, warnings)


def _s3_destination(settings: Settings) -> str:
    if not settings.s3_enabled:
        return "off"
    where = f"s3://{settings.s3_bucket}/{settings.s3_prefix}".rstrip("/")
    endpoint = settings.s3_endpoint_url
    return f"{where} at {endpoint}" if endpoint else where


def _has_key(settings: Settings) -> bool:
    return bool(settings.backup_encryption_key or settings.backup_encryption_key_secret_id)


def _where(settings: Settings) -> dict[str, str]:
    return {
        "repository": str(settings.repository_dir),
        "catalog": str(settings.catalog_path),
        "browsing": f"s3:{settings.browse_prefix}" if settings.browsing else "off",
        "S3 copies": _s3_destination(settings),
    }


def moved_destinations(current: Settings, new: Settings) -> list[tuple[str, str, str]]:
    """(what, now, then) for each place backups are read from or written to that `new`
    changes, and for a key `new` takes away (another key is a rotation, not a move)."""
    before, after = _where(current), _where(new)
    moved = [(what, before[what], after[what]) for what in before if before[what] != after[what]]
    if _has_key(current) and not _has_key(new):
        moved.append(("encryption key", "set", "not set (every backup is refused)"))
    return moved
