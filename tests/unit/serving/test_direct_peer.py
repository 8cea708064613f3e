"""The direct peer is recorded by the protocol, outside uvicorn's proxy-header rewriting, and the
serving options use that protocol with and without TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stetgate.serving.direct_peer import DIRECT_PEER, direct_peer, transport_peer
from stetgate.serving.server import HTTP_PROTOCOL, ServeError, connection_options
from stetgate.serving.tls_uvicorn import _prepare_connection
from stetgate.settings import Settings


class _Transport(asyncio.Transport):
    def __init__(self, peername: Any) -> None:
        super().__init__()
        self._peername = peername

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._peername if name == "peername" else default


@pytest.mark.parametrize(
    ("peername", "expected"),
    [
        (("10.0.0.5", 40000), "10.0.0.5"),
        (("::1", 40000, 0, 0), "::1"),
        ("", None),  # UNIX socket
        (None, None),
    ],
)
def test_transport_peer(peername: Any, expected: str | None) -> None:
    assert transport_peer(_Transport(peername)) == expected


def test_the_connection_wrapper_records_the_tcp_peer_before_any_rewrite() -> None:
    """uvicorn's ProxyHeadersMiddleware is inside the wrapped app: it may rewrite ``client``,
    the recorded direct peer stays the transport's."""
    seen: dict[str, Any] = {}

    async def rewriting_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["client"] = ("198.51.100.7", 0)  # what X-Forwarded-For would do
        seen.update(peer=direct_peer(scope), client=scope["client"])

    app = _prepare_connection(rewriting_app, _Transport(("10.0.0.5", 40000)))
    scope: dict[str, Any] = {"type": "http", "client": ("10.0.0.5", 40000), "headers": []}
    asyncio.run(app(scope, None, None))
    assert seen == {"peer": "10.0.0.5", "client": ("198.51.100.7", 0)}
    assert "tls" not in scope["extensions"]  # plain HTTP: no TLS extension


def test_a_scope_without_the_record_has_no_direct_peer() -> None:
    assert direct_peer({"type": "http", "client": ("127.0.0.1", 1)}) is None
    assert direct_peer({"extensions": {DIRECT_PEER: None}}) is None


def test_plain_http_needs_trusted_proxies(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="trusted_proxies"):
        connection_options(Settings(data_dir=tmp_path), plain_http=True)


def test_plain_http_uses_the_recording_protocol(tmp_path: Path) -> None:
    options = connection_options(
        Settings(data_dir=tmp_path, trusted_proxies=["10.0.0.5/32"]), plain_http=True
    )
    assert options == {
        "http": HTTP_PROTOCOL,
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.5/32",
    }


def test_tls_without_trusted_proxies_turns_uvicorn_proxy_headers_off(tmp_path: Path) -> None:
    """uvicorn's default would rewrite ``client`` from X-Forwarded-For sent from 127.0.0.1."""
    (tmp_path / "server.pem").write_text("x")
    (tmp_path / "server.key").write_text("x")
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "root.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    options = connection_options(Settings(data_dir=tmp_path, trust_dir=trust))
    assert options["http"] == HTTP_PROTOCOL
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] is None
    assert options["ssl_certfile"] == str(tmp_path / "server.pem")
