"""``POST /stet/psd2/oauth/revoke``: token revocation (RFC 7009), STET v1.4.2 Part I §3.4.3.5.

- The client authenticates as at the token endpoint: mutual TLS with its QWAC, ``client_id``
  in the form (RFC 7009 §2.1 "the client also includes its authentication credentials";
  RFC 8705 §2).
- ``token`` is required, ``token_type_hint`` optional and only a hint: the server "MUST extend
  its search across all of its supported token types" (§2.1), so access and refresh tokens are
  both looked up, and an unknown hint value is ignored.
- Revoking either token of a pair revokes both (RFC 7009 §2.1 permits it; BPCE requires it).
- The answer is ``200`` with an empty body whether or not anything was revoked — for unknown
  tokens (§2.2: "invalid tokens do not cause an error response") and for another client's
  tokens, which are left untouched (§2.1: the server verifies "whether the token was issued to
  the client making the revocation request"; saying so would tell a client that the token
  exists).

Nothing waits on the event loop (`stetgate.serving.blocking`): the client's QWAC is answered
from the validator's cache (or path-validated on the blocking pool when new), the revocation
transaction is one hop to the pool, and so is the audit row of a refusal. A database timeout is
``temporarily_unavailable`` (503, ``Retry-After``), with nothing changed.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stetgate.eidas import Psd2Certificate
from stetgate.oauth.client_auth import (
    authenticate_client,
    required_client_id,
    tls_client_certificate,
)
from stetgate.oauth.errors import (
    NO_STORE,
    OAuthError,
    database_unavailable_response,
    oauth_error_response,
)
from stetgate.oauth.form import read_form, required_parameter
from stetgate.oauth.token_pairs import REVOKED_BY_CLIENT, revoke_by_token_hash
from stetgate.secrets import secret_hash
from stetgate.services import Services, services_of
from stetgate.serving.request_id import request_id_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import REVOCATION_REFUSED, TOKEN_REVOKED
from stetgate.store.db import DatabaseUnavailable

REVOKE_PATH = "/stet/psd2/oauth/revoke"


async def revoke(request: Request) -> Response:
    services = services_of(request)
    now = services.clock.now()
    request_id = request_id_of(request.headers)
    client_id: str | None = None
    try:
        try:
            form = await read_form(request)
            certificate = await tls_client_certificate(
                services.tpp_identity, request.scope, now, services.blocking
            )
            client_id = required_client_id(form)
            token = required_parameter(form, "token")
            await services.blocking.run(
                _revoke, services, certificate, client_id, secret_hash(token), now, request_id
            )
        except OAuthError as exc:
            await services.blocking.run(_audit_refusal, services, now, client_id, request_id, exc)
            return oauth_error_response(exc)
    except DatabaseUnavailable as exc:
        return database_unavailable_response(request.scope, exc, request_id)
    return Response(status_code=200, headers=NO_STORE)


def _revoke(
    services: Services,
    certificate: Psd2Certificate,
    client_id: str,
    token_hash: str,
    now: datetime,
    request_id: str | None,
) -> None:
    """Authenticate the client and revoke the pair of ``token_hash`` if it is the client's,
    in one transaction (on the blocking pool)."""
    with services.engine.begin() as conn:
        authenticate_client(conn, certificate, client_id)
        revoked = revoke_by_token_hash(
            conn, token_hash, now, reason=REVOKED_BY_CLIENT, client_id=client_id
        )
        if revoked is not None:
            record_event(
                conn,
                now,
                TOKEN_REVOKED,
                client_id=client_id,
                org_id=revoked.org_id,
                psu_id=revoked.psu_id,
                request_id=request_id,
                reason=REVOKED_BY_CLIENT,
                detail={"grant_id": revoked.id},
            )


def _audit_refusal(
    services: Services,
    now: datetime,
    client_id: str | None,
    request_id: str | None,
    exc: OAuthError,
) -> None:
    with services.engine.begin() as conn:
        record_event(
            conn,
            now,
            REVOCATION_REFUSED,
            client_id=client_id and client_id[:100],
            request_id=request_id,
            reason=f"{exc.error}: {exc.description}" if exc.description else exc.error,
        )


def revoke_route() -> Route:
    return Route(REVOKE_PATH, revoke, methods=["POST"])


__all__ = ["REVOKE_PATH", "revoke", "revoke_route"]
