"""Whether this build has the guide's `backup:full` (every source in one set)."""

import importlib.util

FULL_BACKUP_MODULE = "engines.actions.backup_full"


def full_backup_available() -> bool:
    return importlib.util.find_spec(FULL_BACKUP_MODULE) is not None
