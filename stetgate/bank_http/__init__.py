"""Core banking over HTTP: the contract ``/core-banking/v1`` (``openapi.yaml``, its models in
`contract`) and `HttpBank`, the bank ports over it (docs/bank-integration.md).

`http_bank` builds the adapter from the ``bank_*`` settings; `stetgate.app` uses it when
``bank_url`` is set, the in-process demo bank otherwise.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from stetgate.bank_http.auth import ClientCredentials
from stetgate.bank_http.breaker import CircuitBreaker
from stetgate.bank_http.client import HttpBank
from stetgate.bank_http.transport import PooledTransport
from stetgate.settings import Settings

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """Verify the backend's certificate against ``bank_ca_file`` (else the system's CAs);
    present ``bank_client_cert_file`` for ``bank_auth = "mtls"``."""
    ca = settings.bank_ca_file
    context = ssl.create_default_context(cafile=None if ca is None else str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.bank_client_cert_file is not None:
        key = settings.bank_client_key_file
        context.load_cert_chain(
            str(settings.bank_client_cert_file), None if key is None else str(key)
        )
    return context


def http_bank(settings: Settings) -> HttpBank:
    """`HttpBank` for ``settings.bank_url`` with its timeouts, retries, breaker and
    authentication."""
    assert settings.bank_url is not None
    transport = PooledTransport(
        settings.bank_url.rstrip("/"),
        max_connections=settings.bank_max_connections,
        tls=_tls_context(settings) if settings.bank_url.startswith("https://") else None,
    )
    credentials = None
    if settings.bank_auth == "client_credentials":
        assert settings.bank_token_url and settings.bank_client_id and settings.bank_client_secret
        credentials = ClientCredentials(
            settings.bank_token_url,
            settings.bank_client_id,
            settings.bank_client_secret,
            settings.bank_token_scope,
        )
    return HttpBank(
        transport,
        timeout=settings.bank_timeout_ms / 1000,
        retries=settings.bank_retries,
        backoff=settings.bank_retry_backoff_ms / 1000,
        breaker=CircuitBreaker(
            settings.bank_breaker_failures, settings.bank_breaker_cooldown_seconds
        ),
        credentials=credentials,
    )


__all__ = [
    "OPENAPI_FILE",
    "CircuitBreaker",
    "ClientCredentials",
    "HttpBank",
    "PooledTransport",
    "http_bank",
]
