"""Where the TPP's client certificate comes from: the TLS session, or a trusted proxy.

Two deployments (docs/operations.md#serving, docs/operations.md#behind-a-tls-terminating-proxy):
- stetgate terminates TLS itself: the certificate is in the ASGI TLS extension added by
  `stetgate.serving.tls_uvicorn`.
- a TLS-terminating reverse proxy (nginx ``ssl_verify_client optional_no_ca``, an API gateway)
  forwards it in a header: RFC 9440 ``Client-Cert`` (``:base64 DER:``) or nginx's URL-encoded
  PEM. The header is honoured **only** when the direct peer — the TCP peer of the connection,
  recorded by the protocol (`stetgate.serving.direct_peer`) — is one of ``trusted_proxies``;
  from any other peer it is ignored, so a client cannot claim a certificate by sending the
  header (RFC 9440 §4: only a trusted reverse proxy may produce ``Client-Cert``).

Never ``scope["client"]``: uvicorn rewrites it from ``X-Forwarded-For`` (RFC 7239 §8.1 explains
why such addresses are only hints), so behind nginx it is the end user's address, and a
decision taken on it both refused the real proxy and would depend on a header.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import ssl
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from stetgate.serving.direct_peer import direct_peer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientCertificateSource:
    """Extracts the presented leaf certificate (DER) from an ASGI scope."""

    def __init__(
        self, trusted_proxies: Iterable[str], header_name: str, header_format: str
    ) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in trusted_proxies
        )
        self._header = header_name.lower().encode("latin-1")
        self._format = header_format
        self._peer_cache: dict[str, bool] = {}

    def _peer_is_trusted_proxy(self, scope: Mapping[str, Any]) -> bool:
        """Whether the connection's direct peer (not a forwarded address) is a trusted proxy."""
        if not self._networks:
            return False
        host = direct_peer(scope)
        if host is None:
            return False
        known = self._peer_cache.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self._networks)
            if len(self._peer_cache) < 4096:
                self._peer_cache[host] = known
        return known

    def presented_der(self, scope: Mapping[str, Any]) -> bytes | None:
        """DER of the client's leaf certificate, or None when no certificate was presented."""
        tls = (scope.get("extensions") or {}).get("tls")
        if tls is not None:
            der = tls.get("stetgate_client_cert_der")
            if der:
                return bytes(der)
            chain = tls.get("client_cert_chain") or []
            if chain:
                return _pem_to_der(chain[0])
            # A direct TLS connection without a certificate: never look at headers.
            if not self._peer_is_trusted_proxy(scope):
                return None
        if not self._peer_is_trusted_proxy(scope):
            return None
        for name, value in scope.get("headers", ()):
            if name == self._header:
                return self._decode_header(value.decode("latin-1"))
        return None

    def _decode_header(self, value: str) -> bytes | None:
        value = value.strip()
        if not value:
            return None
        try:
            if self._format == "rfc9440":
                # RFC 9440 §2.2: an sf-binary item, ":<base64 DER>:".
                if len(value) < 3 or value[0] != ":" or value[-1] != ":":
                    return None
                return base64.b64decode(value[1:-1], validate=True)
            return _pem_to_der(unquote(value))
        except (ValueError, binascii.Error):
            return None


def _pem_to_der(pem: str) -> bytes | None:
    try:
        return ssl.PEM_cert_to_DER_cert(pem.strip() + "\n" if "END" in pem else pem)
    except ValueError:
        return None
