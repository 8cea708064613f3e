"""Audit trail: one row per decision (authorization granted/refused/timed out, token issued,
refreshed, revoked, refused with its reason). Never a token, code, password or OTP: callers pass
identifiers and reasons only, and `detail` is filtered of secret-looking keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from stetgate.store.schema import audit_events

_SECRET_KEYS = frozenset(
    {
        "password",
        "otp",
        "code",
        "access_token",
        "refresh_token",
        "token",
        "code_verifier",
        "registration_access_token",
        "totp_secret",
        "secret",
    }
)


def record_event(
    conn: Connection,
    at: datetime,
    event: str,
    *,
    client_id: str | None = None,
    org_id: str | None = None,
    psu_id: str | None = None,
    request_id: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit event inside the caller's transaction (so a refused change leaves no
    event claiming it happened, and an accepted one always has its event)."""
    if detail:
        detail = {k: v for k, v in detail.items() if k.lower() not in _SECRET_KEYS}
    conn.execute(
        insert(audit_events).values(
            at=at,
            event=event,
            client_id=client_id,
            org_id=org_id,
            psu_id=psu_id,
            request_id=(request_id or None) and request_id[:100],
            reason=reason and reason[:200],
            detail=detail or None,
        )
    )
