"""Places backups are kept. Adding one: a module with the `Destination` face, a line in
DESTINATION_KINDS, and its factory in tests/test_destination_contract.py."""

from collections.abc import Callable

from engines.config import Settings
from engines.destinations.base import Destination, InvalidKeyError, StoredObject, validate_key
from engines.destinations.local import LocalRepository

DESTINATION_KINDS: dict[str, Callable[..., Destination]] = {"local": LocalRepository}


def repository_from_settings(settings: Settings) -> Destination:
    """The destination that holds the repository: the local folder BACKUP_DIR."""
    return LocalRepository.from_settings(settings)


__all__ = [
    "DESTINATION_KINDS",
    "Destination",
    "InvalidKeyError",
    "LocalRepository",
    "StoredObject",
    "repository_from_settings",
    "validate_key",
]
