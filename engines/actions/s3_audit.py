"""`jarvis-tui s3 audit`: the bucket of the settings against the guide's S3 advice
(the checks: engines/destinations/s3_audit.py). A read: no job, no lock, nothing changed.
"""

from dataclasses import asdict, dataclass
from typing import Any

from engines.actions.verbs import Request
from engines.config import Settings
from engines.destinations.s3 import S3Destination
from engines.destinations.s3_audit import PASSING, Check, audit_bucket
from engines.errors import SettingsError
from engines.jobs import JobContext
from engines.workspace import Workspace


@dataclass
class AuditReport:
    bucket: str
    prefix: str
    checks: list[Check]

    @property
    def failing(self) -> list[Check]:
        return [check for check in self.checks if check.status not in PASSING]

    @property
    def ok(self) -> bool:
        return not self.failing

    def as_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "ok": self.ok,
            "checks": [asdict(check) for check in self.checks],
        }


def s3_destination(settings: Settings) -> S3Destination:
    destination = S3Destination.from_settings(settings)
    if destination is None:
        raise SettingsError(["S3_ENABLED / S3_BUCKET: no bucket configured; set both to use S3"])
    return destination


def run(workspace: Workspace, request: Request, context: JobContext | None) -> AuditReport:
    settings = workspace.settings
    destination = s3_destination(settings)
    return AuditReport(destination.bucket, destination.prefix, audit_bucket(destination, settings))
