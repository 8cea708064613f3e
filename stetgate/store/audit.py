"""Audit trail: one row per decision (authorization granted/refused/timed out, token issued,
refreshed, revoked, refused with its reason). Never a token, code, password or OTP: callers pass
identifiers and reasons only, and `detail` is filtered of secret-looking keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from stetgate.observability.audit import log_audit_event
from stetgate.observability.metrics import (
    JOURNEY_AUTHORIZED,
    JOURNEY_BLOCKED,
    JOURNEY_FAILED,
    JOURNEY_REFUSED,
    JOURNEY_TIMEOUT,
    count_journey,
)
from stetgate.store.audit_events import (
    AUTHORIZATION_FAILED,
    AUTHORIZATION_GRANTED,
    AUTHORIZATION_REFUSED,
    AUTHORIZATION_TIMED_OUT,
    PSU_BLOCKED,
)
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


_JOURNEY_ENDS = {
    AUTHORIZATION_GRANTED: JOURNEY_AUTHORIZED,
    AUTHORIZATION_REFUSED: JOURNEY_REFUSED,
    AUTHORIZATION_FAILED: JOURNEY_FAILED,
    AUTHORIZATION_TIMED_OUT: JOURNEY_TIMEOUT,
}
"""The events that end an authorization journey (each journey ends once, with one of them:
`stetgate.psu.journeys.finish` is a conditional update), as the outcome the
``stetgate_psu_journeys_total`` counter reports; a failure because the PSU is (or just got)
blocked is counted as ``blocked``."""


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
    fields: dict[str, Any] = {
        "client_id": client_id,
        "org_id": org_id,
        "psu_id": psu_id,
        "request_id": (request_id or None) and request_id[:100],
        "reason": reason and reason[:200],
        "detail": detail or None,
    }
    conn.execute(insert(audit_events).values(at=at, event=event, **fields))
    log_audit_event(event, **fields)
    outcome = _JOURNEY_ENDS.get(event)
    if outcome is not None:
        count_journey(JOURNEY_BLOCKED if reason == PSU_BLOCKED else outcome)
