"""Stopping and starting the application around `restore full`: the operator's own
commands (JARVIS_STOP_COMMAND, JARVIS_START_COMMAND), or the guide's words for doing it
by hand when they are not set."""

import subprocess

from engines.config import Settings
from engines.errors import JarvisError
from engines.jobs import JobContext

# `docker-compose down` waits for containers to stop; a service manager's stop can take
# minutes. Bounded all the same, so a hung command never holds the restore forever.
COMMAND_TIMEOUT_S = 900
SHOWN_OUTPUT_LINES = 5

SETTINGS = {"stop": "JARVIS_STOP_COMMAND", "start": "JARVIS_START_COMMAND"}
GUIDE = {"stop": "docker-compose down", "start": "docker-compose up -d"}


def configured_command(settings: Settings, action: str) -> str | None:
    return getattr(settings, SETTINGS[action].lower())


def by_hand(action: str) -> str:
    """What the operator runs when the setting is not there."""
    return f"{action} the application yourself (the guide: `{GUIDE[action]}`)"


def run_application_command(settings: Settings, action: str, context: JobContext) -> str:
    """Run the configured command for `action` (stop, start) through the shell, as the
    operator wrote it; its output goes to the job log. Raise naming the exit code."""
    name = SETTINGS[action]
    command = configured_command(settings, action)
    assert command, f"{name} is not set"
    context.log(f"running {name}: {command}")
    try:
        done = subprocess.run(
            command,
            shell=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise JarvisError(
            f"{name} did not finish within {COMMAND_TIMEOUT_S} s: {command}; check the "
            f"application and {action} it yourself"
        ) from None
    output = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    for line in output:
        context.log(f"{name}: {line}", level="debug")
    if done.returncode != 0:
        last = "; ".join(output[-SHOWN_OUTPUT_LINES:]) or "no output"
        raise JarvisError(f"{name} exited {done.returncode} ({command}): {last}")
    return f"{name} ran: {command}"
