"""A time in an answer: ISO 8601 with its zone, written as `datetime.isoformat` writes it.

Pydantic would write UTC as `Z`; the CLI's JSON writes `+00:00`. Keeping isoformat's
spelling lets an API answer built from an engine report's `to_json` equal the CLI's
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
