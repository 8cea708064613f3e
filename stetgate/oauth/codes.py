"""Issuing authorization codes (RFC 6749 §4.1.2) at the end of the PSU journey.

A code is an opaque 256-bit secret (decisions.md "Token rules"); only its SHA-256 digest is
stored, with everything the token endpoint must check when it is redeemed: the client and its
organization, the PSU, the exact ``redirect_uri`` (RFC 6749 §4.1.3), the granted scope, the
PKCE challenge (RFC 7636 §4.4) and the time of the SCA (the refresh-token lifetime counts from
it, decisions.md "Lifetimes"). It lives `auth_code_ttl_seconds` (60 s by default; RFC 6749
§4.1.2 recommends at most 10 minutes) and is single use — redemption is the token side's job
(`stetgate.oauth.authorization_code`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, insert

from stetgate.oauth.tokens import new_secret, secret_hash
from stetgate.store.schema import authorization_codes


def issue_authorization_code(
    conn: Connection,
    *,
    client_id: str,
    org_id: str,
    psu_id: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str | None,
    code_challenge_method: str | None,
    sca_at: datetime,
    now: datetime,
    ttl_seconds: int,
) -> str:
    """Store a new code inside the caller's transaction and return it (the only copy)."""
    code = new_secret()
    conn.execute(
        insert(authorization_codes).values(
            code_hash=secret_hash(code),
            client_id=client_id,
            org_id=org_id,
            psu_id=psu_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            sca_at=sca_at,
            expires_at=now + timedelta(seconds=ttl_seconds),
            used_at=None,
            grant_id=None,
        )
    )
    return code
