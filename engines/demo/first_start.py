"""Whether the console starts with nothing it could back up: no database, no Redis, and
none of the folders it would back up exists (the guide's /tmp/jarvis-* on a fresh host).
The console then offers the demo platform."""

from engines.config import Settings
from engines.readiness import exists_or_unreadable


def nothing_to_back_up(settings: Settings) -> bool:
    if settings.browsing or settings.postgres_configured or settings.redis_configured:
        return False
    folders = (*settings.file_paths, *(settings.backup_config_paths or ()))
    return not any(exists_or_unreadable(path) for path in folders)
