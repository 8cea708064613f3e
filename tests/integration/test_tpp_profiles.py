"""A bank profile changes what the TPP client sends, and a real stetgate bank tells whether the
bank would accept it: keyId forms resolved against registered QSealCs, signed-header lists
checked by the bank's policy, endpoints given as absolute URLs, PKCE on or off
(docs/tpp-guide.md#bank-profiles)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import update

from stetgate.store.schema import clients
from stetgate.tpp.bank_profile import BankProfile, builtin_profile
from stetgate.tpp.client import BankError, StetBankClient, TokenSet, TppCredentials
from tests.integration.psd2_support import DemoPsuWorld, demo_psu_world, register_client
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.tpp_profiles import sandbox_with

CALLBACK = "https://tpp.example/cb"
PSU_IP = {"PSU-IP-Address": "198.51.100.23"}
KID = "seal-2031"
SEAL_URL = "https://tpp.example/certs/qsealc.pem"
SIGNED = ("GET", "POST", "PUT", "DELETE")


@pytest.fixture
def world(bank_factory: Callable[..., RunningBank], pki: TestPki) -> DemoPsuWorld:
    return demo_psu_world(bank_factory(), pki, "PSDFR-ACPR-49101")


@pytest.fixture
def sealed(world: DemoPsuWorld, pki: TestPki) -> TppCerts:
    """A second TPP whose QSealC is registered with a ``kid`` and a certificate URL."""
    certs = pki.issue("PSDFR-ACPR-49102", ("AISP",))
    register_client(
        world.bank.services.engine,
        certs,
        world.bank.clock.now(),
        qsealc_kid=KID,
        qsealc_url=SEAL_URL,
    )
    return certs


def _client(
    world: DemoPsuWorld,
    profile: BankProfile,
    certs: TppCerts | None = None,
    key_id: str | None = None,
) -> StetBankClient:
    certs = certs or world.certs
    return StetBankClient(
        world.bank.base_url,
        TppCredentials.from_directory(certs.directory, key_id),
        certs.org_id,
        ca_file=world.pki.ca_pem,
        clock=world.bank.clock,
        profile=profile,
    )


def _authorize(world: DemoPsuWorld, client: StetBankClient, **kwargs: Any) -> TokenSet:
    request = client.authorization_request("aisp", CALLBACK, **kwargs)
    world.bank.clock.advance(31)  # a fresh TOTP step for each journey
    with world.bank.client() as browser:
        callback = world.robot.walk(browser, request.url, CALLBACK)
    return client.exchange_code(request, callback)


@pytest.fixture
def sealed_tokens(world: DemoPsuWorld, sealed: TppCerts) -> Iterator[TokenSet]:
    with _client(world, builtin_profile("sandbox"), sealed) as client:
        yield _authorize(world, client)


# --- keyId ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "forms, key_id",
    [(["registration_kid"], KID), (["certificate_url"], SEAL_URL), (["serial_and_issuer"], None)],
)
def test_each_key_id_form_of_a_profile_is_resolved_by_the_bank(
    world: DemoPsuWorld,
    sealed: TppCerts,
    sealed_tokens: TokenSet,
    forms: list[str],
    key_id: str | None,
) -> None:
    profile = sandbox_with(signature={"key_id_forms": forms})
    with _client(world, profile, sealed, key_id) as client:
        assert client.api("GET", "accounts", sealed_tokens, psu_headers=PSU_IP)["accounts"]


def test_a_kid_the_bank_does_not_know_is_a_401(
    world: DemoPsuWorld, sealed: TppCerts, sealed_tokens: TokenSet
) -> None:
    client = _client(world, builtin_profile("bpce"), sealed, "seal-1999")
    with client, pytest.raises(BankError) as caught:
        client.api("GET", "accounts", sealed_tokens, psu_headers=PSU_IP)
    assert caught.value.status == 401 and caught.value.body["status"] == 401


# --- signed headers -------------------------------------------------------------------------------
def test_a_header_list_without_what_the_bank_requires_is_refused(world: DemoPsuWorld) -> None:
    lists = {m: ["(request-target)", "date", "psu-*"] for m in SIGNED}  # no x-request-id
    with _client(world, sandbox_with(signature={"signed_headers": lists})) as client:
        tokens = _authorize(world, client)
        with pytest.raises(BankError) as caught:
            client.api("GET", "accounts", tokens, psu_headers=PSU_IP)
    assert caught.value.status == 401


def test_a_header_list_with_more_or_without_date_is_accepted(world: DemoPsuWorld) -> None:
    lists = {m: ["(request-target)", "x-request-id", "psu-*", "authorization"] for m in SIGNED}
    lists["PUT"] = ["(request-target)", "x-request-id", "digest", "psu-*", "content-type"]
    with _client(world, sandbox_with(signature={"signed_headers": lists})) as client:
        tokens = _authorize(world, client)
        client.forward_consent(tokens, all_accounts=True, psu_headers=PSU_IP)
        assert client.api("GET", "accounts", tokens, psu_headers=PSU_IP)["accounts"]


# --- endpoints ------------------------------------------------------------------------------------
def test_endpoints_given_as_absolute_urls_are_used(world: DemoPsuWorld) -> None:
    base = world.bank.base_url
    endpoints = {
        name: base + path
        for name, path in builtin_profile("sandbox").endpoints.model_dump().items()
        if name in ("authorize", "token", "revoke", "api_base")
    }
    with _client(world, sandbox_with(endpoints=endpoints)) as client:
        tokens = _authorize(world, client)
        assert client.api("GET", "accounts", tokens, psu_headers=PSU_IP)["accounts"]
        client.revoke(tokens.refresh_token or "")
        with pytest.raises(BankError) as caught:
            client.refresh(tokens)
    assert caught.value.oauth_error == "invalid_grant"


def test_a_wrong_api_base_is_the_bank_s_404_even_without_a_json_body(world: DemoPsuWorld) -> None:
    with _client(world, sandbox_with(endpoints={"api_base": "/stet/psd2/v1.4.1"})) as client:
        tokens = _authorize(world, client)
        with pytest.raises(BankError) as caught:
            client.api("GET", "accounts", tokens, psu_headers=PSU_IP)
    assert caught.value.status == 404  # outside the API base: the server's plain answer
    assert str(caught.value) == "HTTP 404: Not Found"


# --- PKCE -----------------------------------------------------------------------------------------
def _require_pkce(world: DemoPsuWorld) -> None:
    with world.bank.services.engine.begin() as conn:
        conn.execute(
            update(clients)
            .where(clients.c.client_id == world.certs.org_id)
            .values(require_pkce=True)
        )


def test_a_profile_without_pkce_fails_at_a_client_that_requires_it(world: DemoPsuWorld) -> None:
    _require_pkce(world)
    client = _client(world, sandbox_with(pkce="unknown"))
    with client, pytest.raises(BankError, match="invalid_request"):
        _authorize(world, client)


def test_a_profile_with_pkce_passes_at_a_client_that_requires_it(world: DemoPsuWorld) -> None:
    _require_pkce(world)
    with _client(world, sandbox_with(pkce="required")) as client:
        tokens = _authorize(world, client)
    assert tokens.refresh_token


def test_pkce_off_by_profile_exchanges_without_a_verifier(world: DemoPsuWorld) -> None:
    with _client(world, sandbox_with(pkce="not_supported")) as client:
        request = client.authorization_request("aisp", CALLBACK)
        assert request.code_verifier is None
        world.bank.clock.advance(31)
        with world.bank.client() as browser:
            callback = world.robot.walk(browser, request.url, CALLBACK)
        assert client.exchange_code(request, callback).access_token
