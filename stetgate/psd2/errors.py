"""STET resource-API errors: one class per HTTP status, rendered as the STET ErrorModel.

STET v1.4.2 "generic error report structure" (STET Part II; docs/decisions.md#error-body):
``{"timestamp", "status", "error", "message", "path"}`` with ``status`` and
``message`` required, ``error`` the HTTP reason phrase, ``message`` and ``path`` at most 140
characters. Messages are written for the TPP's developers; they never carry a token, a key, a
stack trace or PSU data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from http import HTTPStatus
from typing import ClassVar

from starlette.responses import Response

from stetgate.serving.request_id import REQUEST_ID_HEADER

HAL_JSON = "application/hal+json; charset=utf-8"
"""STET v1.4.2 response media type (HAL, Richardson level 3), errors included."""

MAX_TEXT = 140


class StetError(Exception):
    """Base class; ``status`` is the HTTP status the error is answered with."""

    status: ClassVar[int] = 500

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadRequest(StetError):
    """Missing or malformed header, parameter or body (STET 400)."""

    status = 400


class Unauthorized(StetError):
    """Bad or missing access token, certificate binding or HTTP signature (STET 401)."""

    status = 401

    def __init__(self, message: str, *, error: str = "invalid_token") -> None:
        # RFC 6750 §3: a 401 to a bearer-token request carries a WWW-Authenticate challenge.
        super().__init__(
            message, headers={"WWW-Authenticate": f'Bearer error="{error}"' if error else "Bearer"}
        )


class Forbidden(StetError):
    """The token's role, the PSU's consent or the history depth does not cover the call."""

    status = 403


class NotFound(StetError):
    """Unknown resource, e.g. an ``accountResourceId`` the PSU does not hold."""

    status = 404


class MethodNotAllowed(StetError):
    status = 405


class NotAcceptable(StetError):
    """The ``Accept`` header excludes ``application/hal+json`` and ``application/json``."""

    status = 406


class UnsupportedMediaType(StetError):
    """A request body that is not ``application/json``."""

    status = 415


class PayloadTooLarge(StetError):
    """The body exceeds ``max_body_bytes`` (RFC 9110 §15.5.14)."""

    status = 413


class TooManyRequests(StetError):
    """The unattended-access limit (RTS Art. 36(5)(b); BPCE's 4 batch calls a day) is
    reached for this TPP, PSU, account and endpoint."""

    status = 429


class InternalError(StetError):
    status = 500


class ServiceUnavailable(StetError):
    """The database (or the bank's backend) did not answer in time; nothing was changed and
    the call may be retried (``Retry-After``)."""

    status = 503


class GatewayTimeout(StetError):
    """The bank's core-banking backend did not answer within its time budget (RFC 9110
    §15.6.5); nothing was changed and the call may be retried (``Retry-After``)."""

    status = 504


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def error_body(status: int, message: str, path: str, now: datetime) -> dict[str, object]:
    """The STET ErrorModel document."""
    return {
        "timestamp": now.isoformat(timespec="milliseconds"),
        "status": status,
        "error": HTTPStatus(status).phrase,
        "message": _clip(message),
        "path": _clip(path),
    }


def stet_error_response(
    error: StetError, *, path: str, request_id: str | None, now: datetime
) -> Response:
    """Render ``error``: its status, the STET body, and the request's X-Request-ID when it
    had a well-formed one."""
    body = json.dumps(
        error_body(error.status, error.message, path, now),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    headers = {"Cache-Control": "no-store", **error.headers}
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return Response(body, status_code=error.status, media_type=HAL_JSON, headers=headers)
