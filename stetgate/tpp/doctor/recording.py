"""Every exchange the doctor has with the bank, as evidence: method, path, status and the
``X-Request-ID`` sent and echoed — not the query, not a header carrying a secret, not a body.
Token answers add what RFC 6749 §5.1 says about them (type, lifetimes, whether a refresh
token came), never the tokens.

The transport is the one `StetBankClient` sends through (its ``transport`` argument), so the
library's own signed calls are what gets checked. It can also alter the next request after it
was signed, which is how the doctor proves a bank verifies signatures rather than their
presence.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from stetgate.tpp.client import TppCredentials

REQUEST_ID = "X-Request-ID"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    sent_request_id: str | None
    echoed_request_id: str | None


@dataclass(frozen=True)
class TokenAnswer:
    """A successful token answer (RFC 6749 §5.1), without its secrets."""

    grant_type: str | None
    token_type: str | None
    expires_in: Any
    """As the bank wrote it (absent: None): the check judges its type."""
    refresh_token_returned: bool
    refresh_token_expires_in: Any
    """Not in RFC 6749; some banks announce the refresh token's lifetime this way."""


def mtls_context(credentials: TppCredentials | None, ca_file: Path | None) -> ssl.SSLContext:
    """The TLS context of a TPP call: the bank's CA (or the system store) and, unless
    ``credentials`` is None, the QWAC as client certificate (STET v1.4.2 Part I §3.2)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if credentials is not None:
        context.load_cert_chain(str(credentials.qwac_cert), str(credentials.qwac_key))
    return context


class RecordingTransport(httpx.BaseTransport):
    """An HTTPS transport that records each `Exchange` and can alter one request."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._inner = httpx.HTTPTransport(verify=context)
        self.exchanges: list[Exchange] = []
        self.token_answers: list[TokenAnswer] = []
        self._alter_next: Callable[[httpx.Request], None] | None = None

    def alter_next(self, change: Callable[[httpx.Request], None]) -> None:
        """Apply ``change`` to the next request just before it is sent (after signing)."""
        self._alter_next = change

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        change, self._alter_next = self._alter_next, None
        if change is not None:
            change(request)
        response = self._inner.handle_request(request)
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                response.status_code,
                request.headers.get(REQUEST_ID),
                response.headers.get(REQUEST_ID),
            )
        )
        if request.method == "POST" and response.status_code == 200:
            self._note_token_answer(request, response)
        return response

    def _note_token_answer(self, request: httpx.Request, response: httpx.Response) -> None:
        try:
            body = json.loads(response.read())
        except ValueError:
            return
        if not isinstance(body, dict) or "access_token" not in body:
            return
        form = parse_qs(request.content.decode("ascii", "replace"))
        self.token_answers.append(
            TokenAnswer(
                grant_type=form.get("grant_type", [None])[0],
                token_type=body.get("token_type"),
                expires_in=body.get("expires_in"),
                refresh_token_returned="refresh_token" in body,
                refresh_token_expires_in=body.get("refresh_token_expires_in"),
            )
        )

    def close(self) -> None:
        self._inner.close()
