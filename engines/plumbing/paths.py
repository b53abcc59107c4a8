"""Where things live by default: every platformdirs lookup happens here."""

import hashlib
import re
from pathlib import Path

import platformdirs

APP_NAME = "jarvis-backup"


def default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_cache_dir() -> Path:
    """Scratch space that may be lost: work folders when the repository is read-only."""
    return Path(platformdirs.user_cache_dir(APP_NAME))


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME))


def default_repository_dir() -> Path:
    return default_data_dir() / "repository"


def default_demo_dir() -> Path:
    """The demo platform's folder (`jarvis-tui demo`): its servers, data and settings."""
    return default_data_dir() / "demo"


def default_catalog_path() -> Path:
    return default_data_dir() / "catalog.sqlite3"


def browse_catalog_path(own_catalog: Path, prefix: str) -> Path:
    """The catalog of another host's S3 prefix, browsed read-only: beside this host's own,
    in `browse/`, named for the prefix (readable) and its digest (distinct)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", prefix) or "root"
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:8]
    return own_catalog.parent / "browse" / f"s3-{readable}-{digest}.sqlite3"


def default_env_file() -> Path:
    """The `.env` the console writes a generated key to on first run."""
    return default_config_dir() / ".env"
