"""Adversarial checks of the point-in-time recovery parts (issue #16): inputs an operator
mistypes or an attacker forges, each of which once gave a wrong answer."""

import pytest

from engines.pitr.archiving import runs_wal_push


@pytest.mark.parametrize(
    "command",
    [
        "true jarvis-tui wal-push %p",
        "echo jarvis-tui wal-push %p",
        "sh -c 'exit 0' jarvis-tui wal-push %p",
        "rm -rf x; jarvis-tui wal-push %p",
        "false && jarvis-tui wal-push %p",
        "cp %p /elsewhere/%f || jarvis-tui wal-push %p",
        "jarvis-tui wal-push %p&",
        "jarvis-tui wal-push $(rm -rf x) %p",
        "jarvis-tui wal-push `rm -rf x` %p",
        "jarvis-tui wal-fetch wal-push %p",
        "jarvis-tui wal-push /tmp/other %p",
        "jarvis-tui --browse s3:other wal-push %p",
    ],
)
def test_a_command_that_does_not_run_only_our_wal_push_is_not_ours(command: str) -> None:
    """The scheduled base backup and the watch's window trust this: a command that echoes
    our words, or runs wal-push only after something else, archives nothing here."""
    assert runs_wal_push(command) is False


@pytest.mark.parametrize(
    "command",
    [
        "env PYTHONPATH=/a:/b /usr/bin/python3.11 -m jarvis_tui.launch --env-file /t/j.env "
        "wal-push %p",
        "jarvis-tui --env-file=/etc/jarvis.env wal-push %p",
        "PATH=/opt/bin jarvis-tui wal-push %p",
    ],
)
def test_our_wal_push_however_started_is_ours(command: str) -> None:
    assert runs_wal_push(command) is True
