"""Names of the audit trail's events (``audit_events.event``), one constant each, so a
dashboard, a report or a test refers to the same string the code writes."""

from __future__ import annotations

AUTHORIZE_REQUEST_REJECTED = "authorize_request_rejected"
AUTHORIZATION_STARTED = "authorization_started"
AUTHORIZATION_GRANTED = "authorization_granted"
AUTHORIZATION_REFUSED = "authorization_refused"
AUTHORIZATION_FAILED = "authorization_failed"
