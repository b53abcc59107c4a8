"""Places backups are kept. Adding one: a module with the `Destination` face and a line here."""

from collections.abc import Callable

from engines.destinations.base import Destination, InvalidKeyError, StoredObject, validate_key
from engines.destinations.local import LocalRepository

DESTINATION_KINDS: dict[str, Callable[..., Destination]] = {"local": LocalRepository}

__all__ = [
    "DESTINATION_KINDS",
    "Destination",
    "InvalidKeyError",
    "LocalRepository",
    "StoredObject",
    "validate_key",
]
