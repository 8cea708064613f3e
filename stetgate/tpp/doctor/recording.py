"""Every exchange the doctor has with the bank, as evidence: method, path, status and the
``X-Request-ID`` sent and echoed — not the query, not a header carrying a secret, not a body.

The transport is the one `StetBankClient` sends through (its ``transport`` argument), so the
library's own signed calls are what gets checked. It can also alter the next request after it
was signed, which is how the doctor proves a bank verifies signatures rather than their
presence.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
        return response

    def close(self) -> None:
        self._inner.close()
