"""Every time in an API body: ISO 8601 with its zone, as `datetime.isoformat` writes it
(UTC as `+00:00`).

Pydantic would write UTC as `Z`; the CLI's JSON (`status --json`, `health --json`, the
engine reports' `to_json`) writes `+00:00`. One spelling in every body (sets, jobs, the
overview, the schedule) lets an answer built from an engine report equal the CLI's
output byte for byte, while the OpenAPI document still says `date-time`.
"""

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, PlainSerializer, WithJsonSchema

IsoTime = Annotated[
    AwareDatetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
