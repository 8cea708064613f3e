"""The registration token: ``client_credentials`` with ``scope=manageRegistration``.

BPCE register API, step 1 (docs/decisions.md#registration-token):
``POST /stet/psd2/oauth/token`` with ``grant_type=client_credentials``,
``scope=manageRegistration`` and a generic ``client_id`` (setting ``registration_client_id``,
``PSD2_TPPRegister`` by default), over mTLS. The TPP is not a client yet, so the generic id
authenticates nobody: the QWAC does. Any valid, non-revoked QWAC carrying a PSD2 role gets a
short-lived opaque token (setting ``registration_token_ttl_seconds``), stored hashed in
``service_tokens`` and bound to the QWAC's organizationIdentifier and its ``x5t#S256`` (RFC 8705
§3), so only that certificate can use it at ``POST /stet/setting/v1/register``. No refresh token
(RFC 6749 §4.4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from stetgate.eidas import Psd2Certificate
from stetgate.oauth.client_auth import authenticate_client, required_client_id
from stetgate.oauth.errors import InvalidScope, UnauthorizedClient
from stetgate.oauth.scopes import MANAGE_REGISTRATION
from stetgate.oauth.token_endpoint import GrantHandler, TokenRequest
from stetgate.secrets import new_secret, secret_hash
from stetgate.store.audit import record_event
from stetgate.store.audit_events import REGISTRATION_TOKEN_ISSUED
from stetgate.store.db import read_connection
from stetgate.store.schema import service_tokens

GRANT_TYPE = "client_credentials"


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    """What a valid registration token stands for."""

    org_id: str
    cnf: str
    """``x5t#S256`` of the QWAC the token was issued to (RFC 8705 §3.1)."""
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedRegistrationToken:
    access_token: str
    expires_in: int
    scope: str = MANAGE_REGISTRATION

    def response_body(self) -> dict[str, Any]:
        """RFC 6749 §5.1 (and §4.4.3: no refresh token for client credentials)."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


def is_registration_client(client_id: str | None, registration_client_id: str) -> bool:
    return client_id == registration_client_id


def check_registration_scope(scope: str | None) -> str:
    """RFC 6749 §3.3: the only scope of the generic registration client is
    ``manageRegistration``; an absent scope means it (the pre-defined default); anything
    else is ``invalid_scope``."""
    if scope is None or not scope.strip():
        return MANAGE_REGISTRATION
    if scope.split() != [MANAGE_REGISTRATION]:
        raise InvalidScope(f"the registration client may only ask for scope {MANAGE_REGISTRATION}")
    return MANAGE_REGISTRATION


def refuse_client_credentials_for(client_id: str) -> UnauthorizedClient:
    """RFC 6749 §5.2 ``unauthorized_client``: AISP/CBPII clients use the authorization code
    flow only (docs/decisions.md#scopes-and-roles); client credentials exist here for the
    registration client."""
    return UnauthorizedClient(
        f"client {client_id!r} may not use grant_type={GRANT_TYPE}; it is reserved for the "
        "registration client (scope manageRegistration)"
    )


def require_psd2_role(qwac: Psd2Certificate) -> None:
    """``manageRegistration`` needs *any* PSD2 role (docs/decisions.md#scopes-and-roles)."""
    if not qwac.roles:
        raise UnauthorizedClient("the QWAC carries no PSD2 role (ETSI TS 119 495 §5.1)")


def issue_registration_token(
    conn: Connection,
    qwac: Psd2Certificate,
    *,
    client_id: str,
    now: datetime,
    ttl_seconds: int,
    request_id: str | None = None,
) -> IssuedRegistrationToken:
    """Store a new token (hash only) bound to ``qwac``; the organization's expired tokens
    are swept in the same transaction so the table does not grow without bound."""
    token = new_secret()
    conn.execute(
        delete(service_tokens).where(
            service_tokens.c.org_id == qwac.organization_identifier,
            service_tokens.c.expires_at <= now,
        )
    )
    conn.execute(
        insert(service_tokens).values(
            access_hash=secret_hash(token),
            client_id=client_id,
            org_id=qwac.organization_identifier,
            scope=MANAGE_REGISTRATION,
            cnf=qwac.thumbprint_s256,
            expires_at=now + timedelta(seconds=ttl_seconds),
            created_at=now,
        )
    )
    record_event(
        conn,
        now,
        REGISTRATION_TOKEN_ISSUED,
        client_id=client_id,
        org_id=qwac.organization_identifier,
        request_id=request_id,
        detail={"cnf": qwac.thumbprint_s256},
    )
    return IssuedRegistrationToken(access_token=token, expires_in=ttl_seconds)


def find_registration_token(
    conn: Connection, token: str, now: datetime
) -> RegistrationToken | None:
    """The live registration token whose hash matches, or None (unknown or expired)."""
    row = conn.execute(
        select(service_tokens.c.org_id, service_tokens.c.cnf, service_tokens.c.expires_at).where(
            service_tokens.c.access_hash == secret_hash(token),
            service_tokens.c.scope == MANAGE_REGISTRATION,
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return RegistrationToken(org_id=row.org_id, cnf=row.cnf, expires_at=row.expires_at)


class ClientCredentialsGrant:
    """The ``client_credentials`` handler of the token endpoint (`stetgate.oauth.token_endpoint`).

    The endpoint has already validated the QWAC of the TLS session. For the registration
    client id, any PSD2 role suffices and the token is issued. Any other ``client_id`` is
    first authenticated like on every grant (unknown client or another organization:
    ``invalid_client``), then refused with ``unauthorized_client`` (RFC 6749 §5.2): AISP and
    CBPII clients use the authorization code flow only. Either way the database work is one
    hop to the blocking pool (`stetgate.serving.blocking`); the checks of the form and of the
    QWAC's roles run on the event loop.
    """

    async def __call__(self, request: TokenRequest) -> dict[str, Any]:
        settings = request.services.settings
        client_id = required_client_id(request.form)
        blocking = request.services.blocking
        if not is_registration_client(client_id, settings.registration_client_id):
            await blocking.run(_authenticate_client, request, client_id)
            raise refuse_client_credentials_for(client_id)
        check_registration_scope(request.form.get("scope"))
        require_psd2_role(request.certificate)
        issued = await blocking.run(_issue, request, client_id)
        return issued.response_body()


def _authenticate_client(request: TokenRequest, client_id: str) -> None:
    """`authenticate_client` on a read connection (blocking: on the pool)."""
    with read_connection(request.services.engine) as conn:
        authenticate_client(conn, request.certificate, client_id)


def _issue(request: TokenRequest, client_id: str) -> IssuedRegistrationToken:
    """`issue_registration_token` in its own transaction (blocking: on the pool)."""
    with request.services.engine.begin() as conn:
        return issue_registration_token(
            conn,
            request.certificate,
            client_id=client_id,
            now=request.now,
            ttl_seconds=request.services.settings.registration_token_ttl_seconds,
            request_id=request.request_id,
        )


def grant_handlers() -> dict[str, GrantHandler]:
    """What the register API adds to the token endpoint's grant registry."""
    return {GRANT_TYPE: ClientCredentialsGrant()}
