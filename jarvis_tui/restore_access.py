"""What the restore wizards take from the engine: each kind's restore options, the
report a restore gives back, and the checks their forms run.

Part of the console's access layer (see `engine_access`): loaded with the first wizard
opened, not at the console's start. The database and Redis clients load only when a
form asks a question that needs them.
"""

from engines.config import Settings
from engines.errors import JarvisError
from engines.postgres.options import PostgresRestoreOptions
from engines.redis.options import RedisRestoreOptions
from engines.reports import RestoreReport
from engines.sources.config_files import FILES_DIFFER, ConfigRestoreOptions
from engines.sources.secrets import TARGET_EXISTS, SecretsRestoreOptions
from engines.store.restore import OVERWRITE_POLICIES, FilesRestoreOptions

# What the operator types to confirm a restore that replaces files where they were
# (the files and configuration wizards; the API's `confirm` asks for the same words).
ORIGINAL = "the original locations"

__all__ = [
    "FILES_DIFFER",
    "ORIGINAL",
    "OVERWRITE_POLICIES",
    "TARGET_EXISTS",
    "ConfigRestoreOptions",
    "FilesRestoreOptions",
    "PostgresRestoreOptions",
    "RedisRestoreOptions",
    "RestoreReport",
    "SecretsRestoreOptions",
    "check_database_name",
    "redis_server_address",
]


def check_database_name(name: str) -> str | None:
    """Why `name` cannot be a database name, or None when it can."""
    from engines.postgres.connection import check_identifier

    try:
        check_identifier(name, "database name")
    except JarvisError as error:
        return str(error)
    return None


def redis_server_address(settings: Settings) -> str:
    """`host:port` of REDIS_URL, never its password."""
    from engines.redis.connection import target_from_settings

    try:
        return target_from_settings(settings).address
    except Exception:
        return "the Redis server (REDIS_URL)"
