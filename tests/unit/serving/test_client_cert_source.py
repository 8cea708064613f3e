"""Where the client certificate may come from (TLS session or trusted proxy header)."""

from __future__ import annotations

import base64
import ssl
from urllib.parse import quote

import pytest

from stetgate.serving.client_cert import ClientCertificateSource
from stetgate.serving.direct_peer import DIRECT_PEER
from tests.support.pki import TestPki


@pytest.fixture(scope="module")
def der(pki: TestPki) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pki.issue().qwac_pem.read_text())


def _scope(
    peer: str,
    headers: dict[str, str] | None = None,
    tls_chain: list[str] | None = None,
    *,
    forwarded_client: str | None = None,
) -> dict[str, object]:
    """A scope as the protocol builds it: ``peer`` is the TCP peer (the direct-peer extension);
    ``forwarded_client`` is what uvicorn's proxy-header rewriting put in ``client``."""
    extensions: dict[str, object] = {DIRECT_PEER: peer}
    if tls_chain is not None:
        extensions["tls"] = {"client_cert_chain": tls_chain}
    return {
        "type": "http",
        "client": (forwarded_client or peer, 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "extensions": extensions,
    }


def _rfc9440(der: bytes) -> str:
    return ":" + base64.b64encode(der).decode() + ":"


def test_tls_session_certificate_is_used(der: bytes) -> None:
    source = ClientCertificateSource([], "client-cert", "rfc9440")
    assert (
        source.presented_der(_scope("203.0.113.9", tls_chain=[ssl.DER_cert_to_PEM_cert(der)]))
        == der
    )


def test_header_from_untrusted_peer_is_ignored(der: bytes) -> None:
    source = ClientCertificateSource(["10.0.0.0/8"], "client-cert", "rfc9440")
    assert source.presented_der(_scope("203.0.113.9", {"client-cert": _rfc9440(der)})) is None


def test_header_is_ignored_when_no_proxy_is_configured(der: bytes) -> None:
    source = ClientCertificateSource([], "client-cert", "rfc9440")
    assert source.presented_der(_scope("127.0.0.1", {"client-cert": _rfc9440(der)})) is None


def test_rfc9440_header_from_trusted_proxy_is_used(der: bytes) -> None:
    source = ClientCertificateSource(["127.0.0.1/32"], "client-cert", "rfc9440")
    assert source.presented_der(_scope("127.0.0.1", {"client-cert": _rfc9440(der)})) == der


def test_nginx_escaped_pem_header_from_trusted_proxy_is_used(der: bytes) -> None:
    source = ClientCertificateSource(["127.0.0.1"], "x-ssl-client-cert", "nginx")
    pem = quote(ssl.DER_cert_to_PEM_cert(der))
    assert source.presented_der(_scope("127.0.0.1", {"x-ssl-client-cert": pem})) == der


def test_tls_certificate_wins_over_a_header_from_a_direct_client(der: bytes, pki: TestPki) -> None:
    other = ssl.PEM_cert_to_DER_cert(pki.issue("PSDFR-ACPR-99999").qwac_pem.read_text())
    source = ClientCertificateSource(["127.0.0.1"], "client-cert", "rfc9440")
    scope = _scope(
        "127.0.0.1", {"client-cert": _rfc9440(other)}, tls_chain=[ssl.DER_cert_to_PEM_cert(der)]
    )
    assert source.presented_der(scope) == der


def test_direct_tls_client_without_certificate_cannot_use_the_header(der: bytes) -> None:
    source = ClientCertificateSource(["10.0.0.0/8"], "client-cert", "rfc9440")
    scope = _scope("198.51.100.1", {"client-cert": _rfc9440(der)}, tls_chain=[])
    assert source.presented_der(scope) is None


@pytest.mark.parametrize(
    "value", ["", ":", "::", ":not base64!:", "no-colons", ":" + "A" * 7 + ":"]
)
def test_malformed_rfc9440_header_means_no_certificate(value: str) -> None:
    source = ClientCertificateSource(["127.0.0.1"], "client-cert", "rfc9440")
    assert source.presented_der(_scope("127.0.0.1", {"client-cert": value})) is None


def test_malformed_nginx_header_means_no_certificate() -> None:
    source = ClientCertificateSource(["127.0.0.1"], "x-ssl-client-cert", "nginx")
    assert (
        source.presented_der(_scope("127.0.0.1", {"x-ssl-client-cert": "garbage%20value"})) is None
    )


def test_unparsable_peer_address_is_not_trusted(der: bytes) -> None:
    source = ClientCertificateSource(["127.0.0.1"], "client-cert", "rfc9440")
    assert source.presented_der(_scope("unix-socket", {"client-cert": _rfc9440(der)})) is None


def test_trusted_proxy_header_counts_though_client_was_rewritten_to_the_user(der: bytes) -> None:
    """Behind nginx, uvicorn's proxy_headers put the end user's address in ``client``: the
    decision is on the TCP peer (the proxy), so the certificate header is honoured."""
    source = ClientCertificateSource(["10.0.0.5"], "client-cert", "rfc9440")
    scope = _scope("10.0.0.5", {"client-cert": _rfc9440(der)}, forwarded_client="198.51.100.7")
    assert source.presented_der(scope) == der


def test_forwarded_trusted_address_does_not_make_a_direct_client_trusted(der: bytes) -> None:
    """``client`` claims the proxy's address (X-Forwarded-For rewritten), the TCP peer is
    someone else: the header is ignored."""
    source = ClientCertificateSource(["10.0.0.5"], "client-cert", "rfc9440")
    scope = _scope("203.0.113.9", {"client-cert": _rfc9440(der)}, forwarded_client="10.0.0.5")
    assert source.presented_der(scope) is None


def test_scope_without_a_recorded_direct_peer_never_trusts_the_header(der: bytes) -> None:
    """Another server (or uvicorn's own protocol) records no direct peer: fail closed, even if
    ``client`` is a trusted address."""
    source = ClientCertificateSource(["127.0.0.1"], "client-cert", "rfc9440")
    scope = {
        "type": "http",
        "client": ("127.0.0.1", 50000),
        "headers": [(b"client-cert", _rfc9440(der).encode())],
    }
    assert source.presented_der(scope) is None
