"""Issuing authorization codes (RFC 6749 §4.1.2) at the end of the PSU journey.

A code is an opaque 256-bit secret (docs/decisions.md#opaque-secrets); only its SHA-256 digest is
stored, with everything the token endpoint must check when it is redeemed: the client and its
organization, the PSU, the exact ``redirect_uri`` (RFC 6749 §4.1.3), the granted scope, the
PKCE challenge (RFC 7636 §4.4) and the time of the SCA (the refresh-token lifetime counts from
it, docs/decisions.md#lifetimes). It lives `auth_code_ttl_seconds` (60 s by default; RFC 6749
§4.1.2 recommends at most 10 minutes) and is single use — redemption is the token side's job
(`stetgate.oauth.authorization_code`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert

from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.oauth.authorize import check_tpp
from stetgate.oauth.clients import Client
from stetgate.secrets import new_secret, secret_hash
from stetgate.services import Services
from stetgate.store.schema import authorization_codes


def complete_authorization(
    services: Services,
    client: Client,
    auth: AuthorizationRequest,
    *,
    psu_id: str,
    sca_at: datetime,
    now: datetime,
    end_journey: Callable[[Connection], bool],
) -> str | None:
    """The PSU authorized: re-check the TPP, then issue the code.

    The TPP may have been suspended, or its certificate revoked or expired, while the PSU was
    on the bank's pages, so the checks of ``/authorize`` run again (raises the `OAuthError` to
    send to the callback). Then, in one transaction, ``end_journey`` closes the PSU's journey
    (False when it had already ended: a double submit, a timeout; no code then) and the code is
    stored. Returns the code, or None. Blocking (certificate validation, a transaction): call
    it off the event loop (`stetgate.serving.blocking`).
    """
    check_tpp(services, client, auth.role_scope, now)
    with services.engine.begin() as conn:
        if not end_journey(conn):
            return None
        return issue_authorization_code(
            conn,
            auth,
            org_id=client.org_id,
            psu_id=psu_id,
            sca_at=sca_at,
            now=now,
            ttl_seconds=services.settings.auth_code_ttl_seconds,
        )


def issue_authorization_code(
    conn: Connection,
    auth: AuthorizationRequest,
    *,
    org_id: str,
    psu_id: str,
    sca_at: datetime,
    now: datetime,
    ttl_seconds: int,
) -> str:
    """Store a new code inside the caller's transaction and return it (the only copy)."""
    code = new_secret()
    conn.execute(
        insert(authorization_codes).values(
            code_hash=secret_hash(code),
            client_id=auth.client_id,
            org_id=org_id,
            psu_id=psu_id,
            redirect_uri=auth.redirect_uri,
            scope=auth.scope,
            code_challenge=auth.code_challenge,
            code_challenge_method=auth.code_challenge_method,
            sca_at=sca_at,
            expires_at=now + timedelta(seconds=ttl_seconds),
            used_at=None,
            grant_id=None,
        )
    )
    return code
