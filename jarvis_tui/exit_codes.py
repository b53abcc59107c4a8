"""Process exit codes, one per kind of outcome, so scripts can tell them apart."""

from enum import IntEnum

from engines import errors


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INVALID_SETTINGS = 3
    INTEGRITY = 4
    KEY_MISSING = 5
    LOCKED = 6
    NOT_FOUND = 7
    NO_SPACE = 8
    INTERNAL = 70
    CANCELLED = 130


_FOR_ERROR: tuple[tuple[type[errors.JarvisError], ExitCode], ...] = (
    (errors.SettingsError, ExitCode.INVALID_SETTINGS),
    (errors.ReadOnlyBrowseError, ExitCode.USAGE),
    (errors.UsageError, ExitCode.USAGE),
    (errors.KeyNotAvailableError, ExitCode.KEY_MISSING),
    (errors.IntegrityError, ExitCode.INTEGRITY),
    (errors.RepositoryLockedError, ExitCode.LOCKED),
    (errors.NotFoundError, ExitCode.NOT_FOUND),
    (errors.InsufficientSpaceError, ExitCode.NO_SPACE),
    (errors.JobCancelledError, ExitCode.CANCELLED),
)


def exit_code_for(error: errors.JarvisError) -> ExitCode:
    for kind, code in _FOR_ERROR:
        if isinstance(error, kind):
            return code
    return ExitCode.FAILED
