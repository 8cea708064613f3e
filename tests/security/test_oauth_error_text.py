"""RFC 6749 §5.2 / §4.1.2.1: ``error_description`` only in %x20-21 / %x23-5B / %x5D-7E.

Found by an outside STET conformance run: token errors carried ``§`` ("… (RFC 6749 §3.1)"),
which strict OAuth client libraries refuse. Every OAuth and registration error is now folded
into the set where it is built (`stetgate.oauth.error_text`); these tests check the folding on
any text, on every error class, and on real answers of the token endpoint to malformed
requests whose messages cite RFC sections.
"""

from __future__ import annotations

import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stetgate.oauth import errors as oauth_errors
from stetgate.oauth.callback import error_redirect
from stetgate.oauth.error_text import error_description, is_error_description
from stetgate.oauth.pkce import s256_challenge
from stetgate.registry import errors as registry_errors
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import TOKEN, add_client, exchange_form, new_code

ALLOWED = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")


@given(st.text())
def test_any_text_is_folded_into_the_allowed_set(text: str) -> None:
    assert ALLOWED.fullmatch(error_description(text))


def test_rule_citations_stay_readable() -> None:
    assert error_description("code_verifier mismatch (RFC 7636 §4.6)") == (
        "code_verifier mismatch (RFC 7636 section 4.6)"
    )
    assert error_description('the "scope" is – ≥ 1 … café\\x') == (
        "the 'scope' is - >= 1 ... cafe/x"
    )
    assert is_error_description("plain ASCII (RFC 6749 section 5.2)")
    assert not is_error_description("§")


@pytest.mark.parametrize(
    "error_class",
    [
        c
        for c in vars(oauth_errors).values()
        if isinstance(c, type) and issubclass(c, oauth_errors.OAuthError)
    ],
)
def test_every_oauth_error_class_renders_within_the_set(
    error_class: type[oauth_errors.OAuthError],
) -> None:
    body = error_class('parameter "x" is repeated (RFC 6749 §3.1) — “really”').body()
    assert ALLOWED.fullmatch(body["error_description"])
    assert ALLOWED.fullmatch(body["error"])


def test_registration_errors_render_within_the_set() -> None:
    body = registry_errors.InvalidClientMetadata("jwks must hold one key (RFC 7517 §5)").body()
    assert ALLOWED.fullmatch(body["error_description"])


def test_the_callback_error_description_is_within_the_set() -> None:
    location = error_redirect(
        "https://tpp.example/cb",
        error="access_denied",
        description="refused (RFC 6749 §4.1.2.1)",
        state="s",
        issuer="https://bank.example",
    )
    assert "section" in location and "%C2%A7" not in location


@pytest.fixture
def tpp(pki: TestPki) -> TppCerts:
    return pki.issue("PSDFR-ACPR-47001", ("AISP", "CBPII"))


@pytest.mark.parametrize(
    "tamper",
    [
        "repeated_grant_type",
        "wrong_code_verifier",
        "unknown_grant_type",
        "missing_code",
        "redirect_uri_mismatch",
    ],
)
def test_token_endpoint_errors_are_within_the_set(
    bank: RunningBank, tpp: TppCerts, tamper: str
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now(), require_pkce=True)
    code = new_code(
        bank.services.engine, client, bank.clock.now(), code_challenge=s256_challenge("v" * 43)
    )
    form = exchange_form(client, code, code_verifier="v" * 43)
    body: list[tuple[str, str]] = list(form.items())
    if tamper == "repeated_grant_type":
        body.append(("grant_type", "authorization_code"))
    elif tamper == "wrong_code_verifier":
        body = [(k, "w" * 43 if k == "code_verifier" else v) for k, v in body]
    elif tamper == "unknown_grant_type":
        body = [(k, "password" if k == "grant_type" else v) for k, v in body]
    elif tamper == "missing_code":
        body = [(k, v) for k, v in body if k != "code"]
    else:
        body = [(k, "https://evil.example/cb" if k == "redirect_uri" else v) for k, v in body]
    with bank.client(tpp) as http:
        response = http.post(
            TOKEN,
            content=str(httpx.QueryParams(body)),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert 400 <= response.status_code < 500, response.text
    answer = response.json()
    assert ALLOWED.fullmatch(answer.get("error_description", "")), answer
