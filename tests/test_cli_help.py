"""`--help` of the commands issue 12 added or extended, from real CLI processes: each says
what it does and when it exits 4, and every option has a help line; the README's commands
table lists them."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def help_of(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "jarvis_tui.cli", *command, "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def option_help(text: str) -> dict[str, str]:
    """Each option of the `options:` section with its help text, wrapped lines joined."""
    section = text.split("\noptions:\n", 1)[1]
    found: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        if re.match(r"^  -", line):
            head, _, rest = line.strip().partition("  ")
            current = head.split(", ")[-1].split()[0]
            found[current] = rest.strip()
        elif current and line.startswith("   "):
            found[current] = (found[current] + " " + line.strip()).strip()
        else:
            current = None
    return found


@pytest.mark.parametrize(
    ("command", "options", "described"),
    [
        (("restore", "postgres"), ("--no-owner", "--no-acl", "--with-globals"), ()),
        (("restore", "files"), ("--skip-missing", "--overwrite"), ()),
        (("repair",), ("--dry-run",), ("files/damaged", "exit 4", "prune")),
        (("rekey",), ("--dry-run",), ("BACKUP_ENCRYPTION_KEY_PREVIOUS", "current key")),
        (("prune",), ("--dry-run",), ("exit 4", "jarvis-tui repair", "nothing")),
        (("sync",), ("--dry-run",), ("one listing", "S3 upload failure", "exits 1")),
    ],
)
def test_each_option_has_a_help_line_and_the_command_says_what_it_does(command, options, described):
    text = help_of(*command)
    helps = option_help(text)
    for option in options:
        assert option in helps, text
    for option, words in helps.items():
        assert len(words.split()) >= 3, f"{' '.join(command)} {option}: {words!r}"
    description = text.split("\noptions:\n", 1)[0]
    for phrase in described:
        assert phrase in " ".join(description.split()), text
    if "--dry-run" in helps:
        assert "nothing" in helps["--dry-run"], helps["--dry-run"]


def test_the_readme_commands_table_lists_them():
    rows = [
        line
        for line in (REPO_ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `jarvis-tui ")
    ]
    table = "\n".join(rows)
    for expected in (
        "`jarvis-tui repair [--dry-run]`",
        "`jarvis-tui rekey [--dry-run]`",
        "`jarvis-tui prune [--dry-run]`",
        "`jarvis-tui sync [--dry-run]`",
        "[--skip-missing]",
        "[--no-owner] [--no-acl]",
    ):
        assert expected in table, expected
    cleanup = next(row for row in rows if row.startswith("| `jarvis-tui cleanup"))
    assert "exit 4" in cleanup
