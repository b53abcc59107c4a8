"""Alerts raised by the engine, with the outcome of delivering each one."""

import json
from typing import Any

from engines.catalog.db import Database
from engines.catalog.rows import ALERT_SEVERITIES, Alert, require_one_of
from engines.catalog.times import now_iso
from engines.plumbing.redaction import redact, redact_value


class AlertsMixin:
    _db: Database

    def record_alert(
        self, severity: str, kind: str, message: str, delivery: dict[str, Any] | None = None
    ) -> int:
        require_one_of("alert severity", severity, ALERT_SEVERITIES)
        with self._db.write() as conn:
            return conn.execute(
                "INSERT INTO alerts (at, severity, kind, message, delivery_json)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    now_iso(),
                    severity,
                    kind,
                    redact(message),
                    json.dumps(redact_value(delivery or {}), sort_keys=True),
                ),
            ).lastrowid

    def list_alerts(self, limit: int = 100) -> list[Alert]:
        rows = self._db.rows(
            "SELECT * FROM alerts ORDER BY at DESC, id DESC LIMIT ?", (int(limit),)
        )
        return [Alert.from_row(row) for row in rows]
