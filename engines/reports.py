"""What actions report back to the operator, shared by the engine packages and the
actions: a low module (it imports nothing of ours), so a source's package never
reaches up into `engines/sources` or `engines/actions` for its report type."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RestoreReport:
    """What a restore did, or with `dry_run` what it would do: lines an operator reads."""

    source: str
    dry_run: bool
    target: str
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None  # a dry run's line saying why the restore would be refused
    # What the refusal is about ("target-exists"), so a console can word it without the
    # command line's flags that `refusal` names.
    refusal_reason: str | None = None

    def add(self, line: str) -> None:
        self.lines.append(line)

    def refuse(self, line: str, reason: str | None = None) -> None:
        self.add(line)
        self.refusal = line
        self.refusal_reason = reason
