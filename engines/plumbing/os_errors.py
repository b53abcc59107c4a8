"""Operating-system errors in an operator's words: which path, what happened, what to do.

Every caller that shows an OSError (the CLI, the job record, a part of `backup full`)
goes through `explain_os_error`, so a full disk is always exit 8 and a read-only or
forbidden path always one line that names it.
"""

import errno
from pathlib import Path

from engines.errors import FileSystemError, InsufficientSpaceError, JarvisError
from engines.plumbing.fsutil import NO_SPACE

READ_ONLY = frozenset({errno.EROFS})
FORBIDDEN = frozenset({errno.EACCES, errno.EPERM})


def _where(error: OSError, where: Path | str | None) -> str:
    if error.filename is not None:
        shown = str(error.filename)
        if error.filename2 is not None:
            shown += f" -> {error.filename2}"
        return shown
    return str(where) if where is not None else "a file it needed"


_ADVICE: dict[int, str] = {
    errno.EROFS: "{path}: the file system is read-only; remount it read-write or choose a "
    "writable location, then run again",
    errno.EACCES: "{path}: permission denied; run as the user that owns it or give this user "
    "access, then run again",
    errno.ENOTDIR: "{path}: part of this path is a file, not a folder; correct the setting or "
    "argument that names it",
    errno.ENAMETOOLONG: "{path}: a name in this path is too long for the file system (at most "
    "255 bytes per name); rename it or leave it out",
    errno.ENOENT: "{path}: no such file or folder; check the setting or argument that names it",
    errno.EISDIR: "{path} is a folder where a file was expected; name a file instead",
    errno.EEXIST: "{path} already exists; move it aside or choose another name",
    errno.ELOOP: "{path}: too many levels of symbolic links; check the links along this path",
    errno.EIO: "{path}: input/output error, the disk may be failing; check the kernel log "
    "(dmesg) before running again",
    errno.EMFILE: "{path}: too many open files; raise the limit (ulimit -n) and run again",
    errno.ENFILE: "{path}: the system ran out of open files; run again when it is less busy",
    errno.ENODEV: "{path}: no such device; check that the disk is mounted",
    errno.ESTALE: "{path}: stale network file handle; remount the share and run again",
}
_ADVICE[errno.EPERM] = _ADVICE[errno.EACCES]


def explain_os_error(error: OSError, where: Path | str | None = None) -> JarvisError:
    """The operator-facing error for `error`; `where` names the place when the error
    itself carries no path (a write to an open file on a full disk)."""
    if isinstance(error, JarvisError):
        return error  # said in the operator's words already (a bucket's failure, S3Error)
    path = _where(error, where)
    if error.errno in NO_SPACE:
        return InsufficientSpaceError(
            f"{path}: no space left on the device (or the disk quota is used up); free "
            "space there or choose a larger disk, then run again"
        )
    advice = _ADVICE.get(error.errno) if error.errno is not None else None
    if advice is not None:
        return FileSystemError(advice.format(path=path))
    reason = error.strerror or str(error) or type(error).__name__
    return FileSystemError(f"{path}: {reason}")
