"""What an operator is shown for an exception, wherever it is shown (CLI, console, job).

A JarvisError in its own words, an OSError in words (which path, what to do), anything
else as an unexpected error with its type; always with every secret masked.
"""

from engines.errors import JarvisError
from engines.plumbing.os_errors import explain_os_error
from engines.plumbing.redaction import redact


def error_text(error: BaseException) -> str:
    if isinstance(error, JarvisError):
        text = str(error)
    elif isinstance(error, OSError):
        text = str(explain_os_error(error))
    else:
        text = f"unexpected error: {type(error).__name__}: {error}"
    return redact(text)
