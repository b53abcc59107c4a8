"""The walkthrough's last step (the guide's `npm run health:check`) through the health engine."""

from dataclasses import dataclass

from textual.message import Message


@dataclass
class HealthChecked(Message):
    """The health checks ran; `lines` is what each said, `ok` whether all passed."""

    step: int
    ok: bool
    lines: list[tuple[bool, str]]


def run_health_checks_for(console) -> tuple[bool, list[tuple[bool, str]]]:
    """Blocking: every check of `jarvis-tui health`, as (passed, "name: detail") lines."""
    from engines.monitoring.health import run_health_checks

    checks = run_health_checks(console.settings, console.access.catalog(), console.clock())
    lines = [(check.ok, f"{check.name}: {check.detail}") for check in checks]
    return all(ok for ok, _ in lines), lines
