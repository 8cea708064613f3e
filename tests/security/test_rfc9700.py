"""Attack matrix, RFC 9700 (OAuth 2.0 Security Best Current Practice) and the RFC 6749 /
RFC 7636 / RFC 9207 rules it makes mandatory: redirect URI manipulation, code injection and
replay, PKCE downgrade, mix-up, refresh-token replay, scope escalation, open redirection.

Every test is one attack and checks the exact answer: the status, the OAuth error code, where
it goes (an error page, never a redirect, when the client or its redirect URI is not trusted)
and that nothing changed in the database. One bank serves the module (tests/security/
conftest.py); it rotates refresh tokens (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stetgate.oauth.clients import Client
from stetgate.oauth.pkce import s256_challenge
from stetgate.store.audit_events import CODE_REPLAYED, REFRESH_TOKEN_REUSED
from tests.security.matrix import (
    assert_callback_error,
    assert_error_page,
    authorize,
    token_refused,
    unchanged,
)
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.psu_flow import authorize_params
from tests.support.token_side import (
    CALLBACK,
    TOKEN,
    add_client,
    audit_trail,
    exchange_form,
    introspect,
    new_code,
    obtain_pair,
    refresh_form,
)

pytestmark = pytest.mark.postgres  # code claims and the rotating refresh statement differ by SQL
BANK_SETTINGS = {"rotate_refresh_tokens": True}

ORG = "PSDFR-ACPR-70001"
OTHER_ORG = "PSDFR-ACPR-70002"
PKCE_ORG = "PSDFR-ACPR-70003"
SECOND_CALLBACK = "https://tpp.example/other?tenant=7"
OTHER_CALLBACK = "https://other-tpp.example/callback"
VERIFIER = "v" * 43 + "-._~0123456789"


@dataclass(frozen=True)
class World:
    bank: RunningBank
    tpp: TppCerts
    client: Client
    other_tpp: TppCerts
    other: Client
    pkce_client: Client


@pytest.fixture(scope="module")
def clients(
    module_bank: RunningBank, pki: TestPki
) -> tuple[TppCerts, Client, TppCerts, Client, Client]:
    engine, now = module_bank.services.engine, module_bank.clock.now()
    tpp, other_tpp = pki.issue(ORG, ("AISP", "CBPII")), pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    client = add_client(engine, tpp, now, redirect_uris=(CALLBACK, SECOND_CALLBACK))
    other = add_client(engine, other_tpp, now, redirect_uris=(OTHER_CALLBACK,))
    pkce_client = add_client(engine, pki.issue(PKCE_ORG, ("AISP",)), now, require_pkce=True)
    return tpp, client, other_tpp, other, pkce_client


@pytest.fixture
def world(
    shared_bank: RunningBank, clients: tuple[TppCerts, Client, TppCerts, Client, Client]
) -> World:
    return World(shared_bank, *clients)


def _untrusted_redirect(world: World, redirect_uri: str) -> None:
    with unchanged(world.bank):
        response = authorize(world.bank, authorize_params(ORG, redirect_uri=redirect_uri))
    assert_error_page(response)
    assert redirect_uri not in response.text


# --- §4.1 redirect URI validation: exact string matching, never a redirect when it fails -----
def test_redirect_uri_with_an_appended_path_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, CALLBACK + "/../../evil")


def test_redirect_uri_that_is_a_prefix_of_the_registered_one_is_not_redirected_to(
    world: World,
) -> None:
    _untrusted_redirect(world, CALLBACK[:-1])


def test_redirect_uri_with_a_suffixed_host_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, "https://tpp.example.evil.example/callback")


def test_redirect_uri_in_another_case_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, "https://TPP.example/Callback")


def test_redirect_uri_with_an_extra_query_parameter_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, CALLBACK + "?next=https://evil.example")


def test_redirect_uri_with_a_fragment_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, CALLBACK + "#evil")


def test_redirect_uri_on_another_port_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, "https://tpp.example:8443/callback")


def test_redirect_uri_downgraded_to_http_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, "http://tpp.example/callback")


def test_redirect_uri_with_userinfo_pointing_elsewhere_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, "https://tpp.example@evil.example/callback")


def test_redirect_uri_registered_by_another_client_is_not_redirected_to(world: World) -> None:
    _untrusted_redirect(world, OTHER_CALLBACK)


def test_registered_redirect_uri_with_its_query_dropped_is_not_redirected_to(
    world: World,
) -> None:
    _untrusted_redirect(world, SECOND_CALLBACK.split("?")[0])


def test_unknown_client_with_an_attacker_redirect_uri_gets_an_error_page(world: World) -> None:
    """§4.11 open redirection: an error for an unknown client never goes to its URI."""
    with unchanged(world.bank):
        response = authorize(
            world.bank,
            authorize_params("PSDFR-ACPR-79999", redirect_uri="https://evil.example/cb"),
        )
    assert_error_page(response)
    assert "evil.example" not in response.text


def test_a_repeated_redirect_uri_is_not_redirected_to(world: World) -> None:
    """RFC 6749 §3.1: parameters MUST NOT repeat; the second value is never trusted."""
    raw = authorize_params(ORG)
    query = "&".join(f"{k}={v}" for k, v in raw.items()) + "&redirect_uri=https://evil.example"
    with unchanged(world.bank):
        assert_error_page(authorize(world.bank, query))


# --- §4.2 / §4.5 authorization code: injection, replay, binding -----------------------------
def test_replayed_code_is_invalid_grant_and_revokes_the_tokens_it_issued(world: World) -> None:
    """§4.2.4 / RFC 6749 §4.1.2: a second use is refused and the first pair is revoked."""
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    with world.bank.client(world.tpp) as http:
        first = http.post(TOKEN, data=exchange_form(world.client, code)).json()
        replay = http.post(TOKEN, data=exchange_form(world.client, code))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert introspect(world.bank, world.tpp, token=first["access_token"]) == {"active": False}
    assert introspect(world.bank, world.tpp, token=first["refresh_token"]) == {"active": False}
    assert audit_trail(world.bank.services.engine, CODE_REPLAYED)


def test_code_injected_into_another_clients_exchange_is_invalid_grant(world: World) -> None:
    """§4.5 code injection: a code is bound to the client it was issued to."""
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    form = exchange_form(world.other, code, redirect_uri=OTHER_CALLBACK)
    token_refused(world.bank, world.other_tpp, form, "invalid_grant")
    with world.bank.client(world.tpp) as http:  # and stays usable by its owner
        assert http.post(TOKEN, data=exchange_form(world.client, code)).status_code == 200


def test_code_exchanged_with_another_registered_redirect_uri_is_invalid_grant(
    world: World,
) -> None:
    """RFC 6749 §4.1.3: redirect_uri must be identical to the one of the authorization."""
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    form = exchange_form(world.client, code, redirect_uri=SECOND_CALLBACK)
    token_refused(world.bank, world.tpp, form, "invalid_grant")


def test_expired_code_is_invalid_grant(world: World) -> None:
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    world.bank.clock.advance(world.bank.settings.auth_code_ttl_seconds)
    token_refused(world.bank, world.tpp, exchange_form(world.client, code), "invalid_grant")


def test_guessed_code_is_invalid_grant(world: World) -> None:
    token_refused(world.bank, world.tpp, exchange_form(world.client, "A" * 43), "invalid_grant")


# --- §2.1.1 / RFC 7636 PKCE ---------------------------------------------------------------
def _challenged_code(world: World) -> str:
    return new_code(
        world.bank.services.engine,
        world.client,
        world.bank.clock.now(),
        code_challenge=s256_challenge(VERIFIER),
    )


def test_pkce_code_exchanged_without_verifier_is_invalid_grant(world: World) -> None:
    token_refused(
        world.bank, world.tpp, exchange_form(world.client, _challenged_code(world)), "invalid_grant"
    )


def test_pkce_code_exchanged_with_a_wrong_verifier_is_invalid_grant(world: World) -> None:
    form = exchange_form(world.client, _challenged_code(world), code_verifier="w" * 43)
    token_refused(world.bank, world.tpp, form, "invalid_grant")


def test_pkce_verifier_shorter_than_43_characters_is_invalid_request(world: World) -> None:
    form = exchange_form(world.client, _challenged_code(world), code_verifier=VERIFIER[:42])
    token_refused(world.bank, world.tpp, form, "invalid_request")


def test_pkce_verifier_sent_for_a_code_without_challenge_is_invalid_grant(world: World) -> None:
    """PKCE downgrade (§4.8.2): a verifier where no challenge was made is refused."""
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    form = exchange_form(world.client, code, code_verifier=VERIFIER)
    token_refused(world.bank, world.tpp, form, "invalid_grant")


def test_pkce_plain_method_is_refused_at_authorize(world: World) -> None:
    """§2.1.1: S256 only; ``plain`` would expose the verifier in the front channel."""
    params = authorize_params(ORG, code_challenge=VERIFIER, code_challenge_method="plain")
    with unchanged(world.bank):
        assert_callback_error(world.bank, authorize(world.bank, params), "invalid_request")


def test_pkce_omitted_by_a_client_that_requires_it_is_refused_at_authorize(world: World) -> None:
    with unchanged(world.bank):
        response = authorize(world.bank, authorize_params(PKCE_ORG))
    assert_callback_error(world.bank, response, "invalid_request")


# --- §4.4 mix-up, state ------------------------------------------------------------------
def test_mix_up_callback_names_the_issuer_and_echoes_state_unchanged(world: World) -> None:
    """§4.4.2 / RFC 9207: every authorization response carries ``iss``; state comes back
    byte for byte so the TPP can tie it to its session (CSRF, §4.7)."""
    state = "s t+a/te=1&x"
    with unchanged(world.bank):
        response = authorize(world.bank, authorize_params(ORG, scope="pisp", state=state))
    assert_callback_error(world.bank, response, "invalid_scope", state=state)


def test_a_repeated_state_is_not_echoed(world: World) -> None:
    query = "&".join(f"{k}={v}" for k, v in authorize_params(ORG).items()) + "&state=forged"
    with unchanged(world.bank):
        assert_callback_error(
            world.bank, authorize(world.bank, query), "invalid_request", state=None
        )


# --- §2.1.2 implicit grant, §4.14 refresh tokens, §2.3 scope ------------------------------------
def test_implicit_response_type_token_is_unsupported_response_type(world: World) -> None:
    with unchanged(world.bank):
        response = authorize(world.bank, authorize_params(ORG, response_type="token"))
    assert_callback_error(world.bank, response, "unsupported_response_type")


def test_replayed_rotated_refresh_token_revokes_the_whole_grant(world: World) -> None:
    """§4.14.2: refresh-token rotation with reuse detection."""
    pair = obtain_pair(world.bank, world.tpp, world.client)
    with world.bank.client(world.tpp) as http:
        rotated = http.post(TOKEN, data=refresh_form(world.client, pair["refresh_token"])).json()
        replay = http.post(TOKEN, data=refresh_form(world.client, pair["refresh_token"]))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    for token in (rotated["access_token"], rotated["refresh_token"]):
        assert introspect(world.bank, world.tpp, token=token) == {"active": False}
    assert audit_trail(world.bank.services.engine, REFRESH_TOKEN_REUSED)


def test_refresh_token_used_by_another_client_is_invalid_grant(world: World) -> None:
    pair = obtain_pair(world.bank, world.tpp, world.client)
    form = refresh_form(world.other, pair["refresh_token"])
    token_refused(world.bank, world.other_tpp, form, "invalid_grant")


def test_access_token_presented_as_refresh_token_is_invalid_grant(world: World) -> None:
    pair = obtain_pair(world.bank, world.tpp, world.client)
    form = refresh_form(world.client, pair["access_token"])
    token_refused(world.bank, world.tpp, form, "invalid_grant")


def test_scope_widened_at_the_code_exchange_is_invalid_scope(world: World) -> None:
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    form = exchange_form(world.client, code, scope="aisp extended_transaction_history")
    token_refused(world.bank, world.tpp, form, "invalid_scope")


def test_scope_widened_on_refresh_is_invalid_scope(world: World) -> None:
    pair = obtain_pair(world.bank, world.tpp, world.client)
    form = refresh_form(world.client, pair["refresh_token"], scope="cbpii")
    token_refused(world.bank, world.tpp, form, "invalid_scope")


def test_token_request_with_the_code_in_the_query_string_is_invalid_request(
    world: World,
) -> None:
    """§4.3.2 / RFC 6749 §3.2: credentials in a URL leak to logs; only the form body counts."""
    code = new_code(world.bank.services.engine, world.client, world.bank.clock.now())
    with unchanged(world.bank), world.bank.client(world.tpp) as http:
        response = http.post(TOKEN, params=exchange_form(world.client, code), data={})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
