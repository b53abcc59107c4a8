"""Alerts as an outbox, and conditions that stay open until they clear.

An alert row whose delivery is still `{}` has not been sent: whoever records an
alert (any engine, any process) only writes the row, and the alert dispatcher
claims and delivers it. A condition (say `missing_backup:postgres`) is open
while its newest alert is a warning or critical one, and closed by an `info`
recovery alert of the same kind; checking and recording happen in one write
transaction, so two processes never both raise the same condition.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from engines.catalog.db import Database
from engines.catalog.rows import ALERT_SEVERITIES, Alert, require_one_of
from engines.catalog.times import parse_iso, to_iso
from engines.errors import NotFoundError
from engines.plumbing.redaction import redact, redact_value

PENDING_DELIVERY = "{}"
RECOVERED = "info"


def _insert(conn, at: datetime, severity: str, kind: str, message: str) -> int:
    return conn.execute(
        "INSERT INTO alerts (at, severity, kind, message, delivery_json) VALUES (?, ?, ?, ?, ?)",
        (to_iso(at), severity, kind, redact(message), PENDING_DELIVERY),
    ).lastrowid


def _newest_of_kind(conn, kind: str):
    return conn.execute(
        "SELECT * FROM alerts WHERE kind = ? ORDER BY at DESC, id DESC LIMIT 1", (kind,)
    ).fetchone()


class AlertOutboxMixin:
    _db: Database

    def queue_alert(self, severity: str, kind: str, message: str, at: datetime) -> int:
        """Record an alert for the dispatcher to deliver."""
        require_one_of("alert severity", severity, ALERT_SEVERITIES)
        with self._db.write() as conn:
            return _insert(conn, at, severity, kind, message)

    def raise_condition(
        self, kind: str, severity: str, message: str, at: datetime, remind_after: timedelta
    ) -> tuple[int, str] | None:
        """Open `kind`, or remind of it when its last alert is `remind_after` old.

        Returns (alert id, "raised" | "reminder"), or None when the condition is
        already open and was alerted recently.
        """
        if severity == RECOVERED:
            raise ValueError("a condition is raised as a warning or critical alert, not info")
        require_one_of("alert severity", severity, ALERT_SEVERITIES)
        with self._db.write() as conn:
            newest = _newest_of_kind(conn, kind)
            if newest is None or newest["severity"] == RECOVERED:
                return _insert(conn, at, severity, kind, message), "raised"
            if at - parse_iso(newest["at"]) < remind_after:
                return None
            return _insert(conn, at, severity, kind, f"still unresolved: {message}"), "reminder"

    def clear_condition(self, kind: str, message: str, at: datetime) -> int | None:
        """Close `kind` with a recovery alert; None when it was not open."""
        with self._db.write() as conn:
            newest = _newest_of_kind(conn, kind)
            if newest is None or newest["severity"] == RECOVERED:
                return None
            return _insert(conn, at, RECOVERED, kind, message)

    def open_conditions(self, prefix: str = "") -> list[Alert]:
        """The newest alert of every open condition whose kind starts with `prefix`."""
        rows = self._db.rows(
            "SELECT * FROM ("
            "  SELECT *, ROW_NUMBER() OVER (PARTITION BY kind ORDER BY at DESC, id DESC) AS rank"
            "  FROM alerts WHERE kind LIKE ? ESCAPE '\\'"
            ") WHERE rank = 1 AND severity != 'info' ORDER BY at DESC, id DESC",
            (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        )
        return [Alert.from_row(row) for row in rows]

    def claim_undelivered_alerts(self, claimant: str, not_before: datetime) -> list[Alert]:
        """Take the alerts nobody has delivered yet; older than `not_before` are given up."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE alerts SET delivery_json = ? WHERE delivery_json = ? AND at < ?",
                (
                    json.dumps({"none": "not delivered: older than the delivery window"}),
                    PENDING_DELIVERY,
                    to_iso(not_before),
                ),
            )
            rows = conn.execute(
                "SELECT * FROM alerts WHERE delivery_json = ? ORDER BY at, id", (PENDING_DELIVERY,)
            ).fetchall()
            conn.executemany(
                "UPDATE alerts SET delivery_json = ? WHERE id = ?",
                [(json.dumps({"delivering": claimant}), row["id"]) for row in rows],
            )
        return [Alert.from_row(row) for row in rows]

    def set_alert_delivery(self, alert_id: int, delivery: dict[str, Any]) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE alerts SET delivery_json = ? WHERE id = ?",
                (json.dumps(redact_value(delivery), sort_keys=True), alert_id),
            )

    def get_alert(self, alert_id: int) -> Alert:
        row = self._db.row("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise NotFoundError(f"no alert with id {alert_id} in the catalog")
        return Alert.from_row(row)
