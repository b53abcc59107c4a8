"""Reading `.env` files the way the guide writes them.

Accepted: `KEY=value`, `export KEY=value`, single or double quotes, and inline
comments (`BACKUP_DAILY_TIME="0 2 * * *"  # 2 AM daily`). A `#` inside quotes
or not preceded by whitespace belongs to the value.
"""

import re
from pathlib import Path

from engines.errors import SettingsError

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
# A settings file is a few KiB: a far larger one is some other file named by mistake (a
# log, a dump), which would take minutes and gigabytes to report line by line.
MAX_ENV_BYTES = 1 << 20
MAX_LINE_PROBLEMS = 20


def _unquote_double(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def parse_value(raw: str) -> str | None:
    """The value of one assignment's right-hand side, or None if it is malformed."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = 1
        while end < len(raw):
            if raw[end] == "\\" and quote == '"':
                end += 2
                continue
            if raw[end] == quote:
                break
            end += 1
        else:
            return None
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            return None
        body = raw[1:end]
        return _unquote_double(body) if quote == '"' else body
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _read_text(path: Path) -> str:
    """The file's text; SettingsError when it cannot be read, is too large or not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ENV_BYTES + 1)
    except OSError as exc:
        raise SettingsError([f"{path}: cannot read the .env file ({exc.strerror})"]) from None
    if len(data) > MAX_ENV_BYTES:
        raise SettingsError(
            [
                f"{path}: larger than {MAX_ENV_BYTES >> 20} MiB, too large for a .env file; "
                "is this the settings file?"
            ]
        )
    try:
        # utf-8-sig: editors on Windows save a byte-order mark, which is not part of line 1.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SettingsError([f"{path}: not UTF-8 text; save the .env file as UTF-8"]) from None


def read_env_lines(path: Path) -> tuple[dict[str, str], list[str]]:
    """The well-formed assignments of `path`, and one problem per malformed line.

    A typo on one line leaves the others readable, so every problem in the file
    (malformed lines and bad values alike) can be reported at once. A file that
    cannot be read at all raises SettingsError.
    """
    values: dict[str, str] = {}
    problems = []
    malformed = 0
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        value = parse_value(match.group(2)) if match else None
        if match is None or value is None:
            malformed += 1
            if malformed > MAX_LINE_PROBLEMS:
                continue
        # The line may hold a secret, so only its position (and name) is reported.
        if match is None:
            problems.append(
                f"{path}:{number}: not a KEY=value line; correct or remove it "
                "(line content not shown)"
            )
        elif value is None:
            problems.append(
                f"{path}:{number}: {match.group(1)}: a quote is not closed, or text follows "
                "the closing quote; correct the quotes (line content not shown)"
            )
        else:
            values[match.group(1)] = value
    if malformed > MAX_LINE_PROBLEMS:
        problems.append(
            f"{path}: {malformed - MAX_LINE_PROBLEMS} more malformed line(s) not listed; "
            "is this the .env file?"
        )
    return values, problems


def read_env_file(path: Path) -> dict[str, str]:
    """Parse `path`; every malformed line is reported at once, by line number only."""
    values, problems = read_env_lines(path)
    if problems:
        raise SettingsError(problems)
    return values
