"""Errors of the registration API: one class per error, one renderer.

The body is the RFC 7591 §3.2.2 error JSON (``error`` + ``error_description``) with
``Cache-Control: no-store`` (RFC 7591 §3.2.2 requires it; RFC 7592 §3 reuses it). Error codes
come from RFC 7591 §3.2.2 where it has one; the HTTP-level failures it does not name use the
RFC 6749/6750 code of the same meaning (``invalid_request``, ``invalid_token``,
``access_denied``), and a bad HTTP signature uses ``invalid_signature`` (RFC 7591 §3.2.2 lets
extensions add codes; the status is 401, docs/decisions.md#http-signatures). ``X-Request-ID``
is echoed on every response, errors included (BPCE "API register").
"""

from __future__ import annotations

from typing import ClassVar

from starlette.responses import JSONResponse

from stetgate.oauth.error_text import error_description
from stetgate.oauth.errors import NO_STORE
from stetgate.serving.request_id import REQUEST_ID_HEADER
from stetgate.store.db import RETRY_AFTER_SECONDS


class RegistrationError(Exception):
    """A refused registration request; ``reason`` is a stable code for the audit trail."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str, *, reason: str | None = None) -> None:
        description = error_description(description)  # RFC 6749 §5.2's set, as OAuth errors
        super().__init__(description)
        self.description = description
        self.reason = reason or self.error

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

    def extra_headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(RegistrationError):
    """The request itself is unusable: no ``X-Request-ID``, body not a JSON object."""


class InvalidClientMetadata(RegistrationError):
    """RFC 7591 §3.2.2: a metadata value is invalid (this includes the QSealC in ``jwks``)."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(RegistrationError):
    """RFC 7591 §3.2.2: a redirection URI is invalid (RFC 6749 §3.1.2, RFC 8252 §7.3)."""

    error = "invalid_redirect_uri"


class InvalidToken(RegistrationError):
    """RFC 6750 §3.1: the bearer token is missing, unknown, expired or bound to another
    certificate (RFC 8705 §3). ``presented`` is False when no token came at all, in which
    case the challenge carries no error attribute (RFC 6750 §3.1)."""

    error = "invalid_token"
    status_code = 401

    def __init__(
        self, description: str, *, reason: str | None = None, presented: bool = True
    ) -> None:
        super().__init__(description, reason=reason)
        self.presented = presented

    def extra_headers(self) -> dict[str, str]:
        if not self.presented:
            return {"WWW-Authenticate": 'Bearer realm="stetgate"'}
        return {"WWW-Authenticate": 'Bearer realm="stetgate", error="invalid_token"'}


class InvalidSignature(RegistrationError):
    """The HTTP signature or the ``Digest`` is missing or wrong (docs/decisions.md#http-signatures:
    401, with a description saying what to fix)."""

    error = "invalid_signature"
    status_code = 401

    def extra_headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": 'Signature realm="stetgate", headers="(request-target) '
            'digest x-request-id"'
        }


class ForeignRegistration(RegistrationError):
    """Authenticated, but the token or the registration belongs to another organization
    (RFC 7592 §2: only the owner may read or change a registration)."""

    error = "access_denied"
    status_code = 403


class PayloadTooLarge(RegistrationError):
    status_code = 413


class UnsupportedMediaType(RegistrationError):
    status_code = 415


class TemporarilyUnavailable(RegistrationError):
    """The database did not answer within its statement or lock timeout
    (`stetgate.store.db.DatabaseTimeout`), or is unreachable (`DatabaseUnavailable`): nothing
    was changed, not even the audit trail.
    RFC 6749 §4.1.2.1's ``temporarily_unavailable``, 503 with ``Retry-After``
    (RFC 9110 §10.2.3)."""

    error = "temporarily_unavailable"
    status_code = 503

    def extra_headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def registration_error_response(exc: RegistrationError, request_id: str | None) -> JSONResponse:
    """The RFC 7591 §3.2.2 error response, no-store, with the request id echoed (``request_id``
    comes from `stetgate.serving.request_id.request_id_of`, so it is well formed or None)."""
    headers = {**NO_STORE, **exc.extra_headers()}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)
