"""Attack matrix, FAPI 1.0 Advanced (Part 2) — the negative tests of its conformance suite
that apply to a STET authorization server with mTLS client authentication and certificate-
bound tokens: request objects stetgate does not process, hybrid response types, the redirect
URI requirement, client secrets in place of mTLS, bearer tokens in the query string, token
response caching, the code lifetime, and the TLS cipher suites (§8.5).

stetgate follows STET v1.4.2's authorization code flow (docs/decisions.md#the-cinematic), not
FAPI's hybrid flow or request objects: the right answer to those is an explicit refusal.
"""

from __future__ import annotations

import base64
import ssl

import httpx
import pydantic
import pytest

from stetgate.oauth.clients import Client
from stetgate.serving.server import TLS12_CIPHERS
from stetgate.settings import Settings
from tests.security.matrix import (
    assert_callback_error,
    assert_error_page,
    authorize,
    recording_server,
    token_refused,
    unchanged,
)
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.psu_flow import authorize_params
from tests.support.token_side import TOKEN, add_client, exchange_form, new_code

ORG = "PSDFR-ACPR-72001"
METADATA = "/.well-known/oauth-authorization-server"


@pytest.fixture(scope="module")
def registered(module_bank: RunningBank, pki: TestPki) -> tuple[TppCerts, Client]:
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    return tpp, add_client(module_bank.services.engine, tpp, module_bank.clock.now())


@pytest.fixture
def bank(shared_bank: RunningBank, registered: tuple[TppCerts, Client]) -> RunningBank:
    return shared_bank


def _tls12_client(bank: RunningBank, ciphers: str) -> httpx.Client:
    context = bank.pki.client_ssl_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    return httpx.Client(base_url=bank.base_url, verify=context, timeout=10)


# --- authorization endpoint -----------------------------------------------------------------
def test_request_object_is_refused_with_request_not_supported(bank: RunningBank) -> None:
    """A TPP that signed its parameters in a ``request`` JWT must not see them ignored."""
    jwt = "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9."
    with unchanged(bank):
        response = authorize(bank, authorize_params(ORG, request=jwt))
    assert_callback_error(bank, response, "request_not_supported")


def test_request_uri_is_refused_and_never_fetched(bank: RunningBank) -> None:
    """No server-side request forgery through ``request_uri`` (RFC 9101 §10.4)."""
    with recording_server() as (base_url, seen), unchanged(bank):
        response = authorize(bank, authorize_params(ORG, request_uri=f"{base_url}/request.jwt"))
        assert_callback_error(bank, response, "request_uri_not_supported")
    assert seen == []


def test_hybrid_response_type_code_id_token_is_unsupported_response_type(
    bank: RunningBank,
) -> None:
    with unchanged(bank):
        response = authorize(bank, authorize_params(ORG, response_type="code id_token"))
    assert_callback_error(bank, response, "unsupported_response_type")


def test_authorization_request_without_redirect_uri_gets_an_error_page(bank: RunningBank) -> None:
    """FAPI 1.0 Baseline §5.2.2-9: the redirect URI is required, never defaulted."""
    with unchanged(bank):
        assert_error_page(authorize(bank, authorize_params(ORG, redirect_uri=None)))


def test_authorization_request_without_scope_is_invalid_scope(bank: RunningBank) -> None:
    with unchanged(bank):
        response = authorize(bank, authorize_params(ORG, scope=None))
    assert_callback_error(bank, response, "invalid_scope")


# --- token endpoint -----------------------------------------------------------------------
def test_client_secret_basic_instead_of_mtls_is_invalid_client_401(
    bank: RunningBank, registered: tuple[TppCerts, Client]
) -> None:
    """§5.2.2-14: only ``tls_client_auth``; a password in ``Authorization: Basic`` over a TLS
    session without certificate authenticates nothing."""
    _, client = registered
    form = exchange_form(client, new_code(bank.services.engine, client, bank.clock.now()))
    basic = base64.b64encode(f"{client.client_id}:secret".encode()).decode()
    with unchanged(bank), bank.client(None, headers={"Authorization": f"Basic {basic}"}) as http:
        response = http.post(TOKEN, data=form)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_client_secret_post_instead_of_mtls_is_invalid_client_401(
    bank: RunningBank, registered: tuple[TppCerts, Client]
) -> None:
    _, client = registered
    code = new_code(bank.services.engine, client, bank.clock.now())
    form = exchange_form(client, code, client_secret="secret")
    token_refused(bank, None, form, "invalid_client", 401)


def test_unknown_client_id_at_the_token_endpoint_is_invalid_client_401(
    bank: RunningBank, registered: tuple[TppCerts, Client]
) -> None:
    tpp, client = registered
    code = new_code(bank.services.engine, client, bank.clock.now())
    form = exchange_form(client, code, client_id="PSDFR-ACPR-72999")
    token_refused(bank, tpp, form, "invalid_client", 401)


def test_token_response_cannot_be_cached(
    bank: RunningBank, registered: tuple[TppCerts, Client]
) -> None:
    """RFC 6749 §5.1: ``Cache-Control: no-store`` and ``Pragma: no-cache`` on the tokens."""
    tpp, client = registered
    form = exchange_form(client, new_code(bank.services.engine, client, bank.clock.now()))
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=form)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def test_authorization_code_lifetime_cannot_be_set_above_ten_minutes() -> None:
    """FAPI 1.0 Baseline §5.2.2-13 / RFC 6749 §4.1.2: codes live at most 10 minutes."""
    with pytest.raises(pydantic.ValidationError, match="auth_code_ttl_seconds"):
        Settings(auth_code_ttl_seconds=601)


# --- TLS (§8.5) ---------------------------------------------------------------------------
def test_tls12_cbc_cipher_suite_is_refused_at_the_handshake(bank: RunningBank) -> None:
    """Found by this matrix: uvicorn's default cipher string also served TLS 1.2 CBC suites."""
    with (
        _tls12_client(bank, "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384") as http,
        pytest.raises(httpx.ConnectError),
    ):
        http.get(METADATA)
    with _tls12_client(bank, TLS12_CIPHERS) as http:  # the permitted suites still work
        assert http.get(METADATA).status_code == 200
