"""``GET /stet/psd2/oauth/authorize``: the TPP sends the PSU's browser to the bank
(RFC 6749 §4.1.1; STET v1.4.2 Part I §3.4; steps 2-3 of docs/decisions.md#the-cinematic).

Validation runs in the order RFC 6749 §4.1.2.1 imposes, because it decides *where* an error
goes:

1. ``client_id`` and ``redirect_uri`` — missing, repeated, malformed, unknown client, or a URI
   not registered for it (exact string match, RFC 6749 §3.1.2.3; RFC 9700 §4.1.3): the browser
   must **not** be redirected (an open redirector otherwise); the PSU sees an error page (400).
2. Everything else is answered at the now-trusted callback with ``error``,
   ``error_description``, ``state`` and ``iss`` (RFC 6749 §4.1.2.1, RFC 9207 §2):
   repeated parameters (§3.1 "MUST NOT be included more than once"), malformed or oversized
   values → ``invalid_request``; ``response_type`` other than ``code`` →
   ``unsupported_response_type``; scope → ``invalid_scope`` (§3.3); PKCE (RFC 7636 §4.4.1:
   ``plain`` refused, a challenge required when the client registered ``require_pkce``) →
   ``invalid_request``; then the TPP itself (docs/decisions.md#callback-outcomes): suspended
   client → ``access_denied``/``client_suspended``; a stored QWAC/QSealC that fails validation →
   ``access_denied`` with the eIDAS reason (``certificate_expired``, ``certificate_revoked``…);
   no PSD2 role for the scope in them → ``unauthorized_client``/``role_missing``.

A ``request`` or ``request_uri`` (RFC 9101) is refused with ``request_not_supported`` /
``request_uri_not_supported`` (OpenID Connect Core §3.1.2.6) rather than ignored: a TPP
must not believe the values it signed in a request object apply, and the URI is never fetched.
Empty parameters count as absent (RFC 6749 §3.1); other unknown ones are ignored (§3.1). Nothing is
stored for a refused request except its audit event. An accepted one is handed, as an
`AuthorizationRequest`, to the `AuthorizationFrontend` (stetgate's PSU pages), which starts the
PSU's journey; `stetgate.oauth.codes.complete_authorization` ends it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import unquote_plus

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stetgate.eidas import CertificateError, parse_certificate
from stetgate.eidas.model import Purpose
from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.oauth.callback import error_redirect
from stetgate.oauth.clients import Client, get_client
from stetgate.oauth.errors import (
    AccessDenied,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from stetgate.oauth.redirect_match import is_registered_redirect
from stetgate.oauth.scopes import (
    ROLE_FOR_SCOPE,
    ScopeError,
    format_scope,
    parse_authorization_scope,
)
from stetgate.oauth.untrusted_callback import ParameterProblem, UntrustedCallback
from stetgate.services import Services, services_of
from stetgate.serving.request_id import request_id_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import AUTHORIZE_REQUEST_REJECTED

AUTHORIZE_PATH = "/stet/psd2/oauth/authorize"

MAX_QUERY_BYTES = 8192
MAX_LENGTHS = {
    "response_type": 32,
    "client_id": 100,
    "redirect_uri": 2000,
    "scope": 200,
    "state": 1000,
    "code_challenge": 128,
    "code_challenge_method": 16,
    "ui_locales": 64,
}
_VSCHAR = re.compile(r"[\x20-\x7e]*")  # RFC 6749 Appendix A (state, client_id, scope…)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # RFC 7636 §4.2: BASE64URL(SHA256) = 43


@dataclass(frozen=True)
class QueryParameters:
    """The query string split per RFC 6749 §3.1 rules: empty values dropped, every occurrence
    kept (to detect repeats), names whose value does not decode recorded as malformed."""

    values: dict[str, list[str]]
    malformed: frozenset[str]
    oversized: bool

    def single(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found and len(found) == 1 else None

    def problem_of(self, name: str) -> ParameterProblem | None:
        """Why `name` cannot be used as given (None: absent or fine)."""
        if name in self.malformed:
            return ParameterProblem.MALFORMED
        found = self.values.get(name, [])
        if len(found) > 1:
            return ParameterProblem.REPEATED
        if found and len(found[0]) > MAX_LENGTHS.get(name, MAX_QUERY_BYTES):
            return ParameterProblem.TOO_LONG
        if found and not _VSCHAR.fullmatch(found[0]):
            return ParameterProblem.BAD_CHARACTERS
        return None

    def problem(self, name: str) -> str | None:
        """`problem_of` in English (``"state is repeated"``), for ``error_description``."""
        found = self.problem_of(name)
        return None if found is None else f"{name} {found.value}"


def parse_query(raw: bytes) -> QueryParameters:
    values: dict[str, list[str]] = {}
    malformed: set[str] = set()
    text = raw.decode("latin-1")
    for piece in text.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        try:
            name = unquote_plus(raw_name, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            continue  # an undecodable name is no parameter stetgate knows (RFC 6749 §3.1)
        try:
            if _BAD_PERCENT.search(raw_value):
                raise ValueError("bad percent-encoding")
            value = unquote_plus(raw_value, encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError):
            malformed.add(name)
            continue
        if value:
            values.setdefault(name, []).append(value)
    return QueryParameters(values, frozenset(malformed), len(raw) > MAX_QUERY_BYTES)


class UntrustedRedirect(Exception):
    """Client or redirect_uri unusable: answer with an error page, never a redirect."""

    def __init__(
        self, parameter: str, problem: ParameterProblem, client_id: str | None = None
    ) -> None:
        self.refusal = UntrustedCallback(parameter, problem)
        super().__init__(self.refusal.reason)
        self.reason = self.refusal.reason
        self.client_id = client_id


class RedirectedError(Exception):
    """An OAuth error to send to the (trusted) callback."""

    def __init__(
        self, error: OAuthError, client: Client, redirect_uri: str, state: str | None
    ) -> None:
        super().__init__(error.description)
        self.error = error
        self.client = client
        self.redirect_uri = redirect_uri
        self.state = state


def trusted_callback(conn: Connection, params: QueryParameters) -> tuple[Client, str]:
    """Step 1: the client and its exact registered redirect_uri, or UntrustedRedirect."""
    problem = params.problem_of("client_id")
    client_id = params.single("client_id")
    if problem or client_id is None:
        raise UntrustedRedirect("client_id", problem or ParameterProblem.MISSING)
    client = get_client(conn, client_id)
    if client is None:
        raise UntrustedRedirect("client_id", ParameterProblem.UNKNOWN_CLIENT, client_id)
    problem = params.problem_of("redirect_uri")
    redirect_uri = params.single("redirect_uri")
    if problem or redirect_uri is None:
        raise UntrustedRedirect(
            "redirect_uri", problem or ParameterProblem.MISSING, client.client_id
        )
    if not is_registered_redirect(redirect_uri, client.redirect_uris):
        raise UntrustedRedirect("redirect_uri", ParameterProblem.NOT_REGISTERED, client.client_id)
    return client, redirect_uri


def echoable_state(params: QueryParameters) -> str | None:
    """``state`` to echo on an error: only a single, well-formed value (RFC 6749 §4.1.2.1)."""
    return None if params.problem("state") else params.single("state")


def validate_request(
    params: QueryParameters, client: Client, redirect_uri: str, *, allow_extended_history: bool
) -> AuthorizationRequest:
    """Step 2, the request itself; raises RedirectedError."""
    state = echoable_state(params)

    def refuse(error: OAuthError) -> RedirectedError:
        return RedirectedError(error, client, redirect_uri, state)

    if params.oversized:
        raise refuse(InvalidRequest("request is too large"))
    for name in MAX_LENGTHS:
        problem = params.problem(name)
        if problem:
            raise refuse(InvalidRequest(problem))
    response_type = params.single("response_type")
    if response_type is None:
        raise refuse(InvalidRequest("response_type is missing"))
    if response_type != "code":
        raise refuse(UnsupportedResponseType("only response_type=code is supported"))
    if "request" in params.values or "request" in params.malformed:
        raise refuse(RequestNotSupported("request objects are not supported"))
    if "request_uri" in params.values or "request_uri" in params.malformed:
        raise refuse(RequestUriNotSupported("request_uri is not supported"))
    try:
        _role_scope, scopes = parse_authorization_scope(
            params.single("scope"), allow_extended_history=allow_extended_history
        )
    except ScopeError as exc:
        raise refuse(InvalidScope(str(exc))) from None
    challenge = params.single("code_challenge")
    method = params.single("code_challenge_method")
    if challenge is None and method is not None:
        raise refuse(InvalidRequest("code_challenge_method without code_challenge"))
    if challenge is not None:
        if method != "S256":
            raise refuse(InvalidRequest("code_challenge_method must be S256 (plain is refused)"))
        if not _S256_CHALLENGE.fullmatch(challenge):
            raise refuse(InvalidRequest("code_challenge is not a BASE64URL SHA-256 value"))
    elif client.require_pkce:
        raise refuse(InvalidRequest("code challenge required"))
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=format_scope(scopes),
        state=state,
        code_challenge=challenge,
        code_challenge_method=method if challenge else None,
    )


def check_tpp(services: Services, client: Client, role_scope: str, now: datetime) -> None:
    """docs/decisions.md#checks-on-the-tpp-at-authorize: the client is active, each certificate
    stored for it still validates (chain, validity, CRL) and carries the PSD2 role the scope
    needs (ETSI TS 119 495 §5.1). Raises AccessDenied / UnauthorizedClient. Blocking (a
    certificate not validated yet is path-validated here): call it off the event loop."""
    if not client.active:
        raise AccessDenied("client_suspended")
    role = ROLE_FOR_SCOPE[role_scope]
    for stored in client.certificates:
        purpose: Purpose = "qsealc" if stored.kind == "qsealc" else "qwac"
        try:
            cert = services.tpp_identity.validator.validate(
                parse_certificate(stored.pem.encode()), purpose, now
            )
        except CertificateError as exc:
            raise AccessDenied(exc.reason) from None
        if role not in cert.roles:
            raise UnauthorizedClient("role_missing")


class AuthorizationFrontend(Protocol):
    """The PSU-facing side of ``/authorize`` (stetgate's PSU pages implement it): the endpoint
    decides, the frontend shows. Keeping the pages behind this port lets the OAuth rules stay
    below the pages in the package graph.

    Its methods are called on the blocking pool (`stetgate.serving.blocking`), in the same
    hop as the endpoint's own checks, never on the event loop: they may wait on the database
    (``begin`` stores the journey) and must not use the loop."""

    def begin(
        self,
        request: Request,
        client: Client,
        auth: AuthorizationRequest,
        *,
        ui_locales: str | None,
        now: datetime,
    ) -> Response:
        """Start the PSU's journey for a valid request (identification page next)."""
        ...

    def refuse(
        self, request: Request, refusal: UntrustedCallback, *, ui_locales: str | None
    ) -> Response:
        """The error page for a request whose callback cannot be trusted (never a redirect,
        RFC 6749 §4.1.2.1), saying why in the PSU's language."""
        ...

    def send_back(self, location: str) -> Response:
        """Send the browser to the TPP's (trusted) callback with an error."""
        ...


def authorize_endpoint(frontend: AuthorizationFrontend) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /authorize`` handler: validate in RFC 6749 §4.1.2.1 order, audit a refusal,
    hand a valid request to ``frontend`` — all of it in one hop to the blocking pool (the
    client lookup, the validation of its stored certificates, the audit row or the journey
    are database and path-validation work). A database timeout propagates as
    `stetgate.store.db.DatabaseUnavailable` (the app answers it)."""

    async def authorize(request: Request) -> Response:
        services = services_of(request)
        return await services.blocking.run(
            _authorize, frontend, request, services, services.clock.now()
        )

    return authorize


def _authorize(
    frontend: AuthorizationFrontend, request: Request, services: Services, now: datetime
) -> Response:
    """The whole ``/authorize`` request, synchronously (on the blocking pool)."""
    settings = services.settings
    params = parse_query(request.scope.get("query_string", b""))
    ui_locales = params.single("ui_locales")
    request_id = request_id_of(request.headers)
    try:
        with services.engine.begin() as conn:
            client, redirect_uri = trusted_callback(conn, params)
        auth = validate_request(
            params, client, redirect_uri, allow_extended_history=settings.allow_extended_history
        )
        try:
            check_tpp(services, client, auth.role_scope, now)
        except OAuthError as exc:
            raise RedirectedError(exc, client, redirect_uri, auth.state) from None
    except UntrustedRedirect as exc:
        with services.engine.begin() as conn:
            record_event(
                conn,
                now,
                AUTHORIZE_REQUEST_REJECTED,
                client_id=exc.client_id,
                request_id=request_id,
                reason=exc.reason,
            )
        return frontend.refuse(request, exc.refusal, ui_locales=ui_locales)
    except RedirectedError as exc:
        with services.engine.begin() as conn:
            record_event(
                conn,
                now,
                AUTHORIZE_REQUEST_REJECTED,
                client_id=exc.client.client_id,
                org_id=exc.client.org_id,
                request_id=request_id,
                reason=f"{exc.error.error}: {exc.error.description}",
            )
        return frontend.send_back(
            error_redirect(
                exc.redirect_uri,
                error=exc.error.error,
                description=exc.error.description,
                state=exc.state,
                issuer=services.issuer,
            )
        )
    return frontend.begin(request, client, auth, ui_locales=ui_locales, now=now)


def routes(frontend: AuthorizationFrontend) -> list[Route]:
    return [Route(AUTHORIZE_PATH, authorize_endpoint(frontend), methods=["GET"])]
