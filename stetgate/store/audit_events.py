"""Names of the audit trail's events (``audit_events.event``, String(48)), one constant each, so
a dashboard, a report or a test refers to the same string the code writes. Every event the code
records is named here (``tests/unit/store/test_audit_events.py`` checks it); the ``reason``
column says why, the ``detail`` column carries identifiers, never secrets."""

from __future__ import annotations

# --- the authorization request and the PSU journey -----------------------------------------
AUTHORIZE_REQUEST_REJECTED = "authorize_request_rejected"
"""``/authorize`` refused the request before any PSU page (error page or error redirect)."""
AUTHORIZATION_STARTED = "authorization_started"
AUTHORIZATION_GRANTED = "authorization_granted"
"""The PSU consented; a code was issued."""
AUTHORIZATION_REFUSED = "authorization_refused"
"""The PSU refused consent or cancelled."""
AUTHORIZATION_FAILED = "authorization_failed"
"""The journey ended without a code: too many failed attempts, no usable SCA method, rejected
in the banking app, or the TPP stopped being valid meanwhile."""
AUTHORIZATION_TIMED_OUT = "authorization_timed_out"
AUTHENTICATION_FAILED = "authentication_failed"
"""One failed identification or SCA attempt (the journey goes on below the limit)."""
PSU_AUTHENTICATED = "psu_authenticated"
"""The PSU passed strong customer authentication."""
PSU_AUTHENTICATED_BY_OP = "psu_authenticated_by_op"
"""The PSU passed SCA at the bank's OpenID Provider (delegated login); ``detail`` holds the
evidence the ID token asserted: ``iss``, ``acr``, ``amr``, ``auth_time``."""
OIDC_CALLBACK_REFUSED = "oidc_callback_refused"
"""A return from the OpenID Provider was refused before anything was sent to it: unknown
``state``, another browser's journey, or a replay (``reason``)."""
PSU_BLOCKED = "psu_blocked"
DECOUPLED_SCA_APPROVED = "decoupled_sca_approved"
"""The PSU approved the challenge in the banking app (decoupled SCA)."""
DECOUPLED_SCA_REJECTED = "decoupled_sca_rejected"
"""The PSU rejected the challenge in the banking app (decoupled SCA)."""
DECOUPLED_SCA_EXPIRED = "decoupled_sca_expired"
"""The bank's SCA service let the decoupled challenge expire unanswered."""

# --- the PSU's own session on the connected-apps page ----------------------------------------
SESSION_FAILED = "session_failed"
"""As `AUTHORIZATION_FAILED`, for a connected-apps session (no TPP involved)."""
SESSION_TIMED_OUT = "session_timed_out"
SESSION_SIGNED_OUT = "session_signed_out"
GRANT_REVOKED_BY_PSU = "grant_revoked_by_psu"
"""The PSU revoked a TPP's token pair on the connected-apps page."""

# --- token, revocation endpoints -------------------------------------------------------------
TOKEN_ISSUED = "token_issued"  # noqa: S105 - an event name
"""A code was exchanged for a token pair."""
CODE_REPLAYED = "code_replayed"
"""A used code came back: the pair it produced is revoked (RFC 6749 §4.1.2)."""
TOKEN_REFRESHED = "token_refreshed"  # noqa: S105 - an event name
REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - an event name
"""A rotated-out refresh token came back: the pair is revoked (OAuth 2.1 §6.1)."""
TOKEN_REFUSED = "token_refused"  # noqa: S105 - an event name
"""The token endpoint answered with an OAuth error."""
TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an event name
REVOCATION_REFUSED = "revocation_refused"

# --- resource API ----------------------------------------------------------------------------
PSD2_CONSENT_REPLACED = "psd2.consent_replaced"
"""STET ``PUT /consents``: the AISP forwarded the PSU's consent, replacing the previous one."""
PSD2_BANK_UNAVAILABLE = "psd2.bank_unavailable"
"""A resource-API call failed because the core-banking backend failed (unreachable, timed
out, answered outside the contract, circuit open); ``reason`` says which, the TPP got a
503/504 with its ``X-Request-ID``."""

# --- clients: Go-Live (``stetgate clients``) and the register API ----------------------------
CLIENT_ADDED = "client_added"
"""Go-Live: the operator added a client."""
CLIENT_SUSPENDED = "client_suspended"
CLIENT_RESUMED = "client_resumed"
CLIENT_REMOVED = "client_removed"
"""Go-Live: the operator removed a client (its token pairs are revoked)."""
CLIENT_CERTIFICATE_ADDED = "client_certificate_added"
"""Go-Live: the operator added a QWAC or QSealC to a client (certificate renewal)."""
CLIENT_CERTIFICATE_REMOVED = "client_certificate_removed"
"""Go-Live: the operator removed one of a client's certificates."""
CLIENT_REDIRECT_URIS_SET = "client_redirect_uris_set"
"""Go-Live: the operator replaced a client's redirect URIs (``detail``: before and after)."""
REGISTRATION_TOKEN_ISSUED = "registration_token_issued"  # noqa: S105 - an event name
"""``client_credentials`` with ``scope=manageRegistration``: a token to call the register API."""
CLIENT_REGISTERED = "client_registered"
"""Register API: ``POST`` created a client."""
CLIENT_REGISTRATION_UPDATED = "client_registration_updated"
CLIENT_REGISTRATION_DELETED = "client_registration_deleted"
CLIENT_REGISTRATION_REFUSED = "client_registration_refused"

# --- demo bank administration (``stetgate psu``) ---------------------------------------------
PSU_ADDED = "psu_added"
PSU_UNBLOCKED = "psu_unblocked"
