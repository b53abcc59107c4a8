"""Errors the engine raises on purpose.

Every message is meant for an operator: it names the input that is wrong and
what to do about it, and it never contains a secret.
"""


class JarvisError(Exception):
    """Base class for expected, operator-facing failures."""


class SettingsError(JarvisError):
    """One or more settings are invalid; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


class IntegrityError(JarvisError):
    """An artifact or sidecar failed authentication or its checksum."""


class KeyNotAvailableError(JarvisError):
    """The artifact was sealed with a key that is not configured."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        super().__init__(
            f"this artifact needs encryption key id {key_id}, which is neither "
            "BACKUP_ENCRYPTION_KEY nor listed in BACKUP_ENCRYPTION_KEY_PREVIOUS; "
            "add the key that was in use when the backup was made"
        )


class KeySecretError(KeyNotAvailableError):
    """The key's secret in AWS Secrets Manager could not be read: no key, as when one is
    not configured (and its exit code)."""

    def __init__(self, message: str) -> None:
        self.key_id = ""
        JarvisError.__init__(self, message)


class RepositoryLockedError(JarvisError):
    """Another process holds the repository lock; `holder` is its record, when it wrote one."""

    def __init__(self, message: str, holder: dict | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class ReadOnlyBrowseError(JarvisError):
    """A write asked while browsing another host's backups (BACKUP_BROWSE): a usage error."""


class UsageError(JarvisError):
    """A command line that cannot be served as given (exit 2)."""


class NotFoundError(JarvisError):
    """A backup, artifact or snapshot named by the operator does not exist."""


class CatalogUnreadableError(JarvisError):
    """The catalog file is not a database SQLite can read (damaged, or another file)."""

    def __init__(self, message: str, path: object) -> None:
        super().__init__(message)
        self.path = path


class InsufficientSpaceError(JarvisError):
    """The repository has too little free space for the backup."""


class FileSystemError(JarvisError):
    """A file or folder could not be read or written (read-only, permissions, a bad path)."""


class JobCancelledError(JarvisError):
    """The operator (or a shutdown) cancelled the running job."""

    def __init__(self, message: str = "cancelled by request"):
        super().__init__(message)
