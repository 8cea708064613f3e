"""The direct peer: the address at the other end of the TCP connection, as the server saw it.

Who may pass the client certificate in a header (a TLS-terminating proxy, RFC 9440 §4) is
decided on this address and on nothing the request says. ``scope["client"]`` is not it: with
uvicorn's ``proxy_headers`` (on by default in uvicorn's CLI and ``Config``, and what `serve`
turns on behind a proxy for the logs), ``ProxyHeadersMiddleware`` replaces it with the
``X-Forwarded-For`` address before the app runs, so behind nginx the trust check saw the end
user's address and refused the proxy's certificate header.

The protocol classes of `stetgate.serving.tls_uvicorn` read the transport's ``peername`` once per
connection and store it under `DIRECT_PEER` in ``scope["extensions"]``; they wrap the app
*outside* uvicorn's middleware, so no request header can change it. A scope without it (the app
run by another server, or by uvicorn's own protocol classes) has no known direct peer, and the
certificate header is then never honoured: a configuration mistake fails closed.

Forwarded addresses (``X-Forwarded-For``, RFC 7239 ``Forwarded``; §8.1: any client can send
one) stay what uvicorn makes of them in ``scope["client"]``: information for the logs, never a
reason to trust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

DIRECT_PEER = "stetgate.direct_peer"
"""Key in ``scope["extensions"]``: the TCP peer's host (an IP address string), or absent."""


def transport_peer(transport: asyncio.BaseTransport) -> str | None:
    """The host of the transport's remote address (None for a UNIX socket or unknown peer)."""
    peername = transport.get_extra_info("peername")
    if isinstance(peername, tuple | list) and peername and isinstance(peername[0], str):
        return peername[0]
    return None


def direct_peer(scope: Mapping[str, Any]) -> str | None:
    """The direct peer recorded by the protocol for this request's connection, if any."""
    extensions = scope.get("extensions") or {}
    peer = extensions.get(DIRECT_PEER)
    return peer if isinstance(peer, str) else None
