"""One structured log line per audit event (``stetgate.audit`` logger).

`stetgate.store.audit.record_event` calls `log_audit_event` with the values it writes to the
``audit_events`` row — the same named fields, with ``detail`` already filtered of secret keys —
so the log stream and the audit table tell the same story. The line is written when the row is
added to its transaction (a transaction that then rolls back, a database timeout, leaves a line
without its row; the table is the record, the line is for watching).
"""

from __future__ import annotations

import logging
from typing import Any

from stetgate.observability.logs import AUDIT_LOGGER

_log = logging.getLogger(AUDIT_LOGGER)


def log_audit_event(
    event: str,
    *,
    client_id: str | None,
    org_id: str | None,
    psu_id: str | None,
    request_id: str | None,
    reason: str | None,
    detail: dict[str, Any] | None,
) -> None:
    if not _log.isEnabledFor(logging.INFO):
        return
    _log.info(
        event,
        extra={
            "fields": {
                "event": "audit",
                "audit_event": event,
                "request_id": request_id,
                "client_id": client_id,
                "org_id": org_id,
                "psu_id": psu_id,
                "reason": reason,
                "detail": detail,
            }
        },
    )
