"""POSTs for the webhook channels, with a timeout and errors that never name the URL.

Webhook URLs carry their credentials (Slack's secret path), so neither the URL
nor the query string ever reaches a message.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from engines.alerts.message import ChannelError

USER_AGENT = "jarvis-backup-alerts/1"
SHOWN_BODY = 200


def post(
    url: str, *, form: dict[str, Any] | None = None, payload: Any = None, timeout: float
) -> tuple[int, bytes]:
    """POST a form or a JSON payload; (status, body) for a 2xx answer, else ChannelError."""
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(payload).encode()
        content_type = "application/json"
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": content_type, "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        body = error.read()[:SHOWN_BODY].decode(errors="replace").strip()
        raise ChannelError(
            f"HTTP {error.code} {error.reason}" + (f": {body}" if body else "")
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise ChannelError(f"no answer within {timeout:g} s") from None
        raise ChannelError(f"cannot connect: {_reason_text(reason)}") from None
    except TimeoutError:
        raise ChannelError(f"no answer within {timeout:g} s") from None
    except OSError as error:
        raise ChannelError(f"connection failed: {_reason_text(error)}") from None


def _reason_text(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
