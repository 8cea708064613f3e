"""OAuth 2.0 errors: one class per RFC 6749 §5.2 / §4.1.2.1 error code, one renderer.

Raised by validation steps; the HTTP layer renders them as the RFC 6749 §5.2 JSON body with
``Cache-Control: no-store`` (token, revocation, introspection, registration endpoints) or as a
redirect to the client's callback (authorization endpoint, §4.1.2.1).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.responses import JSONResponse
from starlette.types import Scope

from stetgate.oauth.error_text import error_description
from stetgate.serving.database_outage import log_unavailable
from stetgate.serving.request_id import REQUEST_ID_HEADER
from stetgate.store.db import RETRY_AFTER_SECONDS, DatabaseUnavailable


class OAuthError(Exception):
    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str = "") -> None:
        # RFC 6749 §5.2's character set, whichever way the error is rendered (JSON body,
        # callback query, audit reason): `stetgate.oauth.error_text`.
        description = error_description(description)
        super().__init__(description or self.error)
        self.description = description

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed (here: the mTLS QWAC, RFC 8705 §2)."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class RequestNotSupported(OAuthError):
    """OpenID Connect Core 1.0 §3.1.2.6: a ``request`` object stetgate does not process is
    refused, never ignored (its signed values would silently not apply, RFC 9101 §5)."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """OpenID Connect Core 1.0 §3.1.2.6, as `RequestNotSupported` for ``request_uri`` (nor is
    the URI ever fetched: no server-side request forgery through it, RFC 9101 §10.4)."""

    error = "request_uri_not_supported"


class AccessDenied(OAuthError):
    error = "access_denied"
    status_code = 403


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1 (bearer token on a protected endpoint)."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status_code = 403


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1's ``temporarily_unavailable``, also used at the token, revocation and
    introspection endpoints (no code of their own exists for it): the database did not answer
    within its statement or lock timeout, or is unreachable (`DatabaseUnavailable`). 503 with
    ``Retry-After``; nothing was half-written."""

    error = "temporarily_unavailable"
    status_code = 503


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_NO_STORE_RAW = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]
_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class NoStoreJSONResponse(JSONResponse):
    """``JSONResponse(content, headers=NO_STORE)`` (RFC 6749 §5.1: ``Cache-Control:
    no-store``, ``Pragma: no-cache``), the same bytes and header order, built without
    Starlette's per-response encoder construction and header normalization: the token
    endpoint's success answer is the refresh grant's hot path."""

    def __init__(self, content: Any) -> None:
        self.status_code = 200
        self.background = None
        self.body = _encode_json(content).encode("utf-8")
        self.raw_headers = [
            *_NO_STORE_RAW,
            (b"content-length", str(len(self.body)).encode()),
            (b"content-type", b"application/json"),
        ]


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2 JSON error with no-store caching; 401s carry a WWW-Authenticate
    challenge naming the mechanism (mutual TLS, RFC 8705)."""
    headers = dict(NO_STORE)
    if exc.status_code == 401 and isinstance(exc, InvalidClient):
        headers["WWW-Authenticate"] = 'TLS realm="stetgate", error="invalid_client"'
    elif isinstance(exc, InvalidToken | InsufficientScope):
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    elif exc.status_code == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


def database_unavailable_response(
    scope: Scope, exc: DatabaseUnavailable, request_id: str | None
) -> JSONResponse:
    """The token, revocation and introspection endpoints' answer to `DatabaseUnavailable`:
    ``temporarily_unavailable`` (503, ``Retry-After``, no-store), the request's X-Request-ID
    echoed when it sent a well-formed one, and the request's one log line."""
    log_unavailable(scope, exc)
    response = oauth_error_response(TemporarilyUnavailable(exc.public_description))
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
