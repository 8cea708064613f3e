"""What the attack matrix's tests share: asking ``/authorize`` and the token endpoint, and
checking the exact answer a standard requires — with the database left as it was."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.bank import RunningBank
from tests.support.pki import TppCerts
from tests.support.psu_flow import AUTHORIZE, callback_keys, callback_query
from tests.support.token_side import TOKEN, database_state


@contextmanager
def unchanged(bank: RunningBank) -> Iterator[None]:
    """The block leaves every table but the audit trail as it was."""
    before = database_state(bank.services.engine)
    yield
    assert database_state(bank.services.engine) == before


def authorize(bank: RunningBank, query: Mapping[str, str] | str) -> httpx.Response:
    """``GET /authorize`` as the PSU's browser sends it (no redirect followed)."""
    raw = query if isinstance(query, str) else urlencode(query)
    with bank.client() as http:
        return http.get(f"{AUTHORIZE}?{raw}", follow_redirects=False)


def assert_error_page(response: httpx.Response) -> None:
    """RFC 6749 §4.1.2.1 / RFC 9700 §4.11: no redirect at all, an HTML error page that cannot
    be framed."""
    assert response.status_code == 400, response.text[:300]
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def assert_callback_error(
    bank: RunningBank, response: httpx.Response, error: str, *, state: str | None = "st-123"
) -> dict[str, str]:
    """RFC 6749 §4.1.2.1 + RFC 9207 §2: a 303 to the registered callback with ``error``,
    ``error_description``, the ``state`` sent (if any) and the issuer as ``iss``."""
    query = callback_query(response)
    assert query["error"] == error, query
    assert query.get("state") == state
    assert query["iss"] == bank.services.issuer
    expected = ["error", "error_description"] + (["state"] if state else []) + ["iss"]
    assert callback_keys(response.headers["location"]) == expected
    return query


def token_refused(
    bank: RunningBank,
    tpp: TppCerts | None,
    form: Mapping[str, str],
    error: str,
    status: int = 400,
) -> dict[str, str]:
    """RFC 6749 §5.2: the JSON error, ``Cache-Control: no-store``, nothing changed."""
    with unchanged(bank), bank.client(tpp) as http:
        response = http.post(TOKEN, data=dict(form))
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, str] = response.json()
    assert body["error"] == error, body
    return body


@contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server answering 404 and recording every path asked: (base URL, paths).
    A test points a URL the bank must never fetch at it and checks the list stays empty."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
