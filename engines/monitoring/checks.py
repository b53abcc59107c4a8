"""One health check's answer, shared by every check."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    detail: str
    # A check that passes yet asks for attention (no schedule enabled, an old key still in
    # use): what to know. It never makes `health` fail.
    warning: str = ""

    def to_json(self) -> dict:
        shown = asdict(self)
        if not self.warning:
            del shown["warning"]  # the JSON of a plain check stays as it was
        return shown
