"""One health check's answer, shared by every check."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return asdict(self)
