"""GET /.well-known/oauth-authorization-server (RFC 8414) from a running bank."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.bank import RunningBank


@pytest.mark.postgres  # PostgreSQL smoke test of the metadata endpoint
def test_metadata_describes_the_bank(bank: RunningBank) -> None:
    with httpx.Client(base_url=bank.base_url, verify=bank.pki.client_ssl_context()) as http:
        response = http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    issuer = bank.base_url
    assert body["issuer"] == issuer
    assert body["authorization_endpoint"] == f"{issuer}/stet/psd2/oauth/authorize"
    assert body["token_endpoint"] == f"{issuer}/stet/psd2/oauth/token"
    assert body["revocation_endpoint"] == f"{issuer}/stet/psd2/oauth/revoke"
    assert body["introspection_endpoint"] == f"{issuer}/stet/psd2/oauth/introspect"
    assert body["registration_endpoint"] == f"{issuer}/stet/setting/v1/register"
    assert body["tls_client_certificate_bound_access_tokens"] is True
    assert body["token_endpoint_auth_methods_supported"] == ["tls_client_auth"]
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert {"aisp", "cbpii"} <= set(body["scopes_supported"])
    assert "extended_transaction_history" not in body["scopes_supported"]
    assert {"authorization_code", "refresh_token"} <= set(body["grant_types_supported"])
    for endpoint in ("token", "revocation", "introspection"):
        assert endpoint + "_endpoint" in body


def test_metadata_offers_extended_history_only_when_allowed(bank_factory: Any) -> None:
    bank: RunningBank = bank_factory(allow_extended_history=True)
    with httpx.Client(base_url=bank.base_url, verify=bank.pki.client_ssl_context()) as http:
        body = http.get("/.well-known/oauth-authorization-server").json()
    assert "extended_transaction_history" in body["scopes_supported"]
