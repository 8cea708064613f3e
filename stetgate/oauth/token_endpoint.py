"""``POST /stet/psd2/oauth/token``: the token endpoint (RFC 6749 §3.2, STET v1.4.2 Part I §3.4).

One place does what every grant shares, then hands over to the handler registered for the
``grant_type`` (a plain ``dict[str, GrantHandler]`` built by `create_app`, so another package
adds a grant without touching this module — the register API adds ``client_credentials``):

1. the body is an RFC 6749 §3.2 form (`stetgate.oauth.form`), else ``invalid_request``;
2. the TLS session carries a valid QWAC (RFC 8705 §2, `client_auth.tls_client_certificate`),
   else ``invalid_client`` — the only client authentication
   (docs/decisions.md#mutual-tls-client-authentication);
3. ``grant_type`` names a registered handler, else ``unsupported_grant_type`` (§5.2).

A handler binds the certificate to its client, applies its grant's rules, writes in one
transaction and returns the RFC 6749 §5.1 JSON body; it refuses with an
`stetgate.oauth.errors.OAuthError`. Success and error responses carry
``Cache-Control: no-store`` (§5.1, §5.2). Refusals are audited here (``token_refused`` with
the error and its description — never a token or code); successes by the handler, inside its
own transaction. A database statement or lock timeout, or a database that is unreachable
(`stetgate.store.db.DatabaseUnavailable`), is answered ``temporarily_unavailable`` (503,
``Retry-After``, X-Request-ID echoed): nothing is half-written (each handler's work is one
transaction) and nothing is audited.

Nothing here waits on the event loop (`stetgate.serving.blocking`): a returning TPP's QWAC is
answered from the validator's cache, a new one is path-validated on the blocking pool; each
handler runs its transaction there in one hop, and so does the audit row of a refusal.

Why a direct implementation over Starlette rather than Authlib's server
(docs/decisions.md#no-oauth-server-library): Authlib 1.9 has no RFC 8705 (no
``tls_client_auth``, no certificate-bound tokens), no ASGI server integration and a synchronous
core, so it would need 150–250 lines of request/response glue plus a threadpool hop per request,
while the clients here are mTLS-only, confidential, with no secrets, one response type and two
grants. What Authlib would contribute — parameter checks of RFC 6749/7009/7662 — is a few dozen
lines here, each citing its section, and the refresh grant's one-statement hot path (the
product's throughput bar) could not live inside Authlib's save/query hooks anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stetgate.eidas import Psd2Certificate
from stetgate.oauth.client_auth import tls_client_certificate
from stetgate.oauth.errors import (
    InvalidRequest,
    NoStoreJSONResponse,
    OAuthError,
    TemporarilyUnavailable,
    UnsupportedGrantType,
    database_unavailable_response,
    oauth_error_response,
)
from stetgate.oauth.form import read_form
from stetgate.observability.metrics import count_grant_issued, count_grant_refused
from stetgate.services import Services, services_of
from stetgate.serving.access import note_caller
from stetgate.serving.request_id import request_id_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import TOKEN_REFUSED
from stetgate.store.db import DatabaseUnavailable

TOKEN_PATH = "/stet/psd2/oauth/token"  # noqa: S105 - a URL path


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """Everything a grant handler gets: the parsed form, the validated QWAC of the TLS
    session, the shared services, the time of the request and its audit id."""

    form: Mapping[str, str]
    certificate: Psd2Certificate
    """Already validated for TLS client authentication (chain, validity, CRL, QcType web,
    EKU clientAuth). Not yet bound to a client: that is the handler's first step."""
    asgi_scope: Scope
    """The ASGI scope (for anything else a handler needs from the connection)."""
    services: Services
    now: datetime
    request_id: str | None


class GrantHandler(Protocol):
    """One ``grant_type`` of the token endpoint.

    Returns the RFC 6749 §5.1 JSON body — directly, or as an awaitable for a handler that
    waits for something — and raises an ``OAuthError`` to refuse (the endpoint renders and
    audits it). It is called on the event loop, so it must not wait there: a database round
    trip or a lock held by another transaction would stall every request of the worker
    (`stetgate.serving.blocking`). A handler checks its form on the loop, then hands its
    transaction to ``request.services.blocking`` in one hop and returns that awaitable (the
    code exchange, client credentials), or joins a batch that another thread writes (the
    refresh grant's group commit). Returning a dict directly is for a handler that does no
    I/O at all.
    """

    def __call__(self, request: TokenRequest) -> dict[str, Any] | Awaitable[dict[str, Any]]: ...


def token_response_body(
    *, access_token: str, expires_in: int, scope: str, refresh_token: str | None
) -> dict[str, Any]:
    """RFC 6749 §5.1 with the STET/BPCE field set: ``access_token``, ``token_type=Bearer``,
    ``expires_in``, ``refresh_token`` (when there is one), ``scope``."""
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    body["scope"] = scope
    return body


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``moment`` (never negative), for ``expires_in``."""
    return max(0, int((moment - now).total_seconds()))


class TokenEndpoint:
    """The endpoint, an ASGI app of its own; ``handlers`` maps ``grant_type`` to its handler.

    Routed as an ASGI app rather than a request function: Starlette's ``request_response``
    wrapper adds a second exception-handler layer (the app's `ExceptionMiddleware` already
    has the same handlers) and a ``send`` wrapper to every refresh grant, the hot path."""

    def __init__(self, handlers: Mapping[str, GrantHandler]) -> None:
        self.handlers = dict(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive, send))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        services = services_of(request)
        now = services.clock.now()
        request_id = request_id_of(request.headers)
        form: Mapping[str, str] = {}
        try:
            try:
                form = await read_form(request)
                body = await self._answer(request, services, form, now, request_id)
            except OAuthError as exc:
                count_grant_refused(grant_type_label(form, self.handlers), exc.error)
                await services.blocking.run(
                    _audit_refusal, services, request.scope, form, exc, now, request_id
                )
                return oauth_error_response(exc)
        except DatabaseUnavailable as exc:
            count_grant_refused(grant_type_label(form, self.handlers), TemporarilyUnavailable.error)
            return database_unavailable_response(request.scope, exc, request_id)
        count_grant_issued(form["grant_type"])
        # The handler bound the QWAC to this client_id (RFC 8705 §2): now it is known.
        note_caller(request.scope, client_id=form.get("client_id"))
        return NoStoreJSONResponse(body)

    async def _answer(
        self,
        request: Request,
        services: Services,
        form: Mapping[str, str],
        now: datetime,
        request_id: str | None,
    ) -> dict[str, Any]:
        """Steps 2-3 of the module docstring, then the grant's handler."""
        certificate = await tls_client_certificate(
            services.tpp_identity, request.scope, now, services.blocking
        )
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        handler = self.handlers.get(grant_type)
        if handler is None:
            raise UnsupportedGrantType(f"grant_type {grant_type[:64]} is not supported")
        token_request = TokenRequest(form, certificate, request.scope, services, now, request_id)
        answer = handler(token_request)
        # A dict is the answer itself (`GrantHandler`); isinstance is cheaper than the
        # Awaitable ABC check of inspect.isawaitable on every grant.
        return answer if isinstance(answer, dict) else await answer


def grant_type_label(form: Mapping[str, str], registered: Mapping[str, GrantHandler]) -> str:
    """The metric label of a request's grant type: a registered one, else ``other`` (``none``
    when absent) — never the client's own string, so the label set stays bounded."""
    grant_type = form.get("grant_type")
    if grant_type is None:
        return "none"
    return grant_type if grant_type in registered else "other"


def _audit_refusal(
    services: Services,
    asgi_scope: Scope,
    form: Mapping[str, str],
    exc: OAuthError,
    now: datetime,
    request_id: str | None,
) -> None:
    """``token_refused`` with the RFC 6749 error, its description and the grant type; the
    organization comes from the certificate when one could be parsed (identity only, it says
    nothing about trust). Runs on the blocking pool (one transaction)."""
    try:
        presented = services.tpp_identity.presented(asgi_scope)
    except Exception:  # an unparsable certificate just leaves org_id empty
        presented = None
    client_id = form.get("client_id")
    with services.engine.begin() as conn:
        record_event(
            conn,
            now,
            TOKEN_REFUSED,
            client_id=client_id[:100] if client_id else None,
            org_id=presented.organization_identifier if presented else None,
            request_id=request_id,
            reason=f"{exc.error}: {exc.description}" if exc.description else exc.error,
            detail={"grant_type": (form.get("grant_type") or "")[:64]},
        )


def token_route(handlers: Mapping[str, GrantHandler]) -> Route:
    return Route(TOKEN_PATH, TokenEndpoint(handlers), methods=["POST"])


__all__ = [
    "TOKEN_PATH",
    "GrantHandler",
    "TokenEndpoint",
    "TokenRequest",
    "seconds_until",
    "token_response_body",
    "token_route",
]
