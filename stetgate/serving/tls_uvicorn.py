"""uvicorn protocol classes that expose the TLS client certificate and the direct peer to the app.

uvicorn verifies client certificates (``ssl_cert_reqs``) but does not implement the ASGI TLS
extension, so the app never sees who connected
(docs/decisions.md#client-certificate-in-the-asgi-scope). These subclasses read the peer
certificate once per connection, in ``connection_made``, and add ``scope["extensions"]["tls"]``
(ASGI TLS extension key names) to every request of that connection.

They also record the connection's TCP peer (`stetgate.serving.direct_peer`), with or without
TLS: `serve --plain-http` behind a TLS-terminating proxy uses the same class. The wrapper sits
outside uvicorn's ``ProxyHeadersMiddleware``, so it sees the real peer before
``X-Forwarded-For`` rewrites ``scope["client"]``; the trusted-proxy decision is taken on it.

They rely on uvicorn internals (``self.app``), so uvicorn is pinned in pyproject.toml and
tests/integration/test_serve.py and tests/integration/test_nginx.py exercise the hook on real
servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stetgate.serving.direct_peer import DIRECT_PEER, transport_peer

ASGIApp = Any


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Disable Nagle: asyncio only does it for sockets created with IPPROTO_TCP, and sockets
    bound by uvicorn's multi-worker supervisor (or a test harness) are created with proto 0,
    which makes every response whose body is written after its headers wait ~40 ms for the
    peer's delayed ACK."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        # Not in the ASGI TLS extension: the DER as read once per connection, so the app does
        # not decode the PEM again on every request of a keep-alive connection.
        "stetgate_client_cert_der": der or None,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
        "server_cert": None,
    }


class _WithConnectionExtensions:
    """Wraps the app for one connection, adding the connection's extensions (the TLS extension
    when there is TLS, the direct peer always) to each HTTP scope."""

    __slots__ = ("_app", "_extensions")

    def __init__(self, app: ASGIApp, extensions: dict[str, Any]) -> None:
        self._app = app
        self._extensions = extensions

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions.update(self._extensions)
        scope["extensions"] = extensions
        await self._app(scope, receive, send)


class _CoalescingTransport:
    """The connection's transport, with the writes of one event-loop turn sent as one.

    uvicorn writes a response's status line and headers, then its body, with two
    ``transport.write`` calls: over TLS that is two records, two ``send`` system calls and two
    TCP segments per response. Profiles of the refresh grant put a quarter of the event-loop
    thread's time in those writes (docs/performance-notes.md). Here the first write of a turn
    is held and the writes that follow in the same turn are appended; one ``call_soon``
    callback sends them together. ``close`` sends what is held first. Everything else is the
    real transport's."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._pending is None:
            self._pending = [bytes(data)]
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(bytes(data))

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _prepare_connection(app: ASGIApp, transport: asyncio.Transport) -> ASGIApp:
    """Per new connection: TCP_NODELAY, and the app wrapped to see the TLS extension and the
    direct peer (read from the transport, never from a header)."""
    _set_nodelay(transport)
    extensions: dict[str, Any] = {DIRECT_PEER: transport_peer(transport)}
    tls = _tls_extension(transport)
    if tls is not None:
        extensions["tls"] = tls
    return _WithConnectionExtensions(app, extensions)


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol with the connection extensions; also the plain-HTTP protocol."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _prepare_connection(self.app, transport)
        # Responses are written through the coalescing wrapper (flow control, set up by
        # uvicorn above, keeps the real transport).
        self.transport = _CoalescingTransport(transport, self.loop)  # type: ignore[assignment]


class TLSH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _prepare_connection(self.app, transport)
