"""Regression tests for the TPP library defects a new TPP developer met: the body
keyword, paging links sent as the bank wrote them, bank profiles, ensure-fresh, the register
calls, and where state files go. No bank needed: httpx's MockTransport records requests."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509

from stetgate.clock import FrozenClock
from stetgate.httpsig import ResolvedKey, verify_request
from stetgate.tpp.client import (
    BankError,
    BankProfile,
    Registration,
    StetBankClient,
    TokenFile,
    TokenSet,
    TppCredentials,
    default_state_dir,
)
from tests.support.pki import TestPki

BANK = "https://bank.test"
NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


class Script:
    """Answers in order, and every request seen."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else httpx.Response(200, json={})


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def _client(pki: TestPki, script: Script, clock: FrozenClock, **kwargs: object) -> StetBankClient:
    creds = TppCredentials.from_directory(pki.issue().directory)
    return StetBankClient(
        BANK,
        creds,
        kwargs.pop("client_id", "PSDFR-ACPR-12345"),  # type: ignore[arg-type]
        ca_file=pki.ca_pem,
        transport=httpx.MockTransport(script),
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(pki: TestPki, script: Script, clock: FrozenClock) -> Iterator[StetBankClient]:
    with _client(pki, script, clock) as c:
        yield c


def _tokens(obtained_at: datetime = NOW, expires_in: int = 3600) -> TokenSet:
    return TokenSet("A", "R", expires_in, "aisp", obtained_at)


def _verified(pki: TestPki, sent: httpx.Request) -> frozenset[str]:
    cert = x509.load_pem_x509_certificate(pki.issue().qsealc_pem.read_bytes())
    verified = verify_request(
        sent.method,
        sent.url.raw_path.decode(),
        sent.headers.multi_items(),
        sent.content,
        lambda key_id: ResolvedKey.from_certificate(cert),
        now=NOW,
    )
    return frozenset(verified.signed_headers)


# --- api(json=…) -------------------------------------------------------------------------------
def test_api_takes_the_body_as_json_like_httpx(client: StetBankClient, script: Script) -> None:
    script.answers.append(httpx.Response(201))
    assert client.api("PUT", "consents", _tokens(), json={"psuIdentity": True}) == {}
    sent = script.requests[0]
    assert json.loads(sent.content) == {"psuIdentity": True}
    assert sent.headers["Digest"].startswith("SHA-256=")
    assert sent.url.path == "/stet/psd2/v1.4.2/consents"


def test_api_refuses_two_bodies(client: StetBankClient, script: Script) -> None:
    with pytest.raises(TypeError, match="json or json_body"):
        client.api("PUT", "consents", _tokens(), json={}, json_body={})
    assert script.requests == []


def test_api_raises_bank_error_with_the_stet_message(
    client: StetBankClient, script: Script
) -> None:
    script.answers.append(httpx.Response(403, json={"status": 403, "message": "no consent"}))
    with pytest.raises(BankError, match="no consent") as caught:
        client.api("GET", "accounts/x/balances", _tokens())
    assert caught.value.status == 403


# --- follow() ----------------------------------------------------------------------------------
def test_follow_sends_and_signs_an_encoded_paging_link_byte_for_byte(
    client: StetBankClient, script: Script, pki: TestPki
) -> None:
    href = (
        f"{BANK}/stet/psd2/v1.4.2/accounts/A1/transactions"
        "?dateFrom=2031-01-01T00%3A00%3A00%2B01%3A00&page=a%2Fb%3D"
    )
    client.follow(href, _tokens())
    sent = script.requests[0]
    assert sent.url.raw_path.decode() == href.removeprefix(BANK)
    assert "%25" not in sent.url.raw_path.decode(), "nothing re-encoded"
    assert parse_qs(urlsplit(str(sent.url)).query)["dateFrom"] == ["2031-01-01T00:00:00+01:00"]
    assert "(request-target)" in _verified(pki, sent)


def test_follow_of_a_relative_link_without_query(client: StetBankClient, script: Script) -> None:
    client.follow("/stet/psd2/v1.4.2/accounts", _tokens())
    assert script.requests[0].url.raw_path == b"/stet/psd2/v1.4.2/accounts"


def test_params_and_an_encoded_query_together_are_refused(client: StetBankClient) -> None:
    with pytest.raises(TypeError):
        client.signed_request("GET", "accounts", "A", params={"a": "1"}, query="b=2")


# --- bank profile ------------------------------------------------------------------------------
def test_a_bank_profile_moves_every_path_and_turns_pkce_off(
    pki: TestPki, script: Script, clock: FrozenClock
) -> None:
    profile = BankProfile.from_mapping(
        {
            "name": "other-layout",
            "pkce": "unknown",
            "endpoints": {
                "authorize": "/oauth2/authorize",
                "token": "/oauth2/token",
                "revoke": "/oauth2/revoke",
                "api_base": "/psd2/v1",
            },
        }
    )
    with _client(pki, script, clock, profile=profile) as bank:
        request = bank.authorization_request("aisp", "https://tpp.example/cb", state="s")
        assert request.url.startswith(f"{BANK}/oauth2/authorize?")
        assert "code_challenge" not in request.url and request.code_verifier is None
        assert (
            "code_challenge"
            in bank.authorization_request("aisp", "https://tpp.example/cb", use_pkce=True).url
        )
        script.answers.append(
            httpx.Response(200, json={"access_token": "A", "expires_in": 60, "scope": "aisp"})
        )
        bank.exchange_code(request, f"https://tpp.example/cb?code=C&state=s&iss={BANK}")
        bank.api("GET", "accounts", _tokens())
        bank.revoke("R")
    assert [r.url.path for r in script.requests] == [
        "/oauth2/token",
        "/psd2/v1/accounts",
        "/oauth2/revoke",
    ]
    assert "code_verifier" not in parse_qs(script.requests[0].content.decode())


def test_pkce_is_on_by_default(client: StetBankClient) -> None:
    assert "code_challenge_method=S256" in client.authorization_request("aisp", "https://t/cb").url


# --- ensure_fresh ------------------------------------------------------------------------------
def test_ensure_fresh_keeps_a_living_token_without_calling_the_bank(
    client: StetBankClient, script: Script, clock: FrozenClock
) -> None:
    tokens = _tokens()
    clock.advance(3600 - 61)
    assert client.ensure_fresh(tokens) is tokens
    assert script.requests == []


def test_ensure_fresh_refreshes_within_the_margin_and_keeps_the_refresh_token(
    client: StetBankClient, script: Script, clock: FrozenClock
) -> None:
    script.answers.append(httpx.Response(200, json={"access_token": "B", "expires_in": 3600}))
    clock.advance(3600 - 59)
    fresh = client.ensure_fresh(_tokens())
    assert (fresh.access_token, fresh.refresh_token) == ("B", "R")
    assert fresh.obtained_at == clock.now()
    assert parse_qs(script.requests[0].content.decode())["grant_type"] == ["refresh_token"]


def test_ensure_fresh_surfaces_an_ended_authorization(
    client: StetBankClient, script: Script, clock: FrozenClock
) -> None:
    script.answers.append(httpx.Response(400, json={"error": "invalid_grant"}))
    clock.advance(7200)
    with pytest.raises(BankError) as caught:
        client.ensure_fresh(_tokens())
    assert caught.value.oauth_error == "invalid_grant"


# --- register API ------------------------------------------------------------------------------
def _registered(client_id: str = "c-1") -> dict[str, object]:
    return {
        "client_id": client_id,
        "registration_access_token": "RAT",
        "registration_client_uri": f"{BANK}/stet/setting/v1/register/{client_id}",
        "client_name": "My TPP",
        "redirect_uris": ["https://127.0.0.1/callback"],
    }


def test_register_gets_a_registration_token_then_posts_signed_metadata(
    pki: TestPki, script: Script, clock: FrozenClock
) -> None:
    script.answers += [
        httpx.Response(200, json={"access_token": "REG", "token_type": "Bearer"}),
        httpx.Response(201, json=_registered()),
    ]
    with _client(pki, script, clock, client_id="") as bank:
        metadata = bank.client_metadata(
            "My TPP", ["https://127.0.0.1/callback"], contacts=["a@tpp.example"]
        )
        registration = bank.register(metadata)
    assert registration == Registration.from_response(_registered())
    token_request, post = script.requests
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["PSD2_TPPRegister"],
        "scope": ["manageRegistration"],
    }
    assert post.url.path == "/stet/setting/v1/register"
    assert post.headers["Authorization"] == "Bearer REG"
    assert {"(request-target)", "digest", "x-request-id"} <= _verified(pki, post)
    body = json.loads(post.content)
    assert body["token_endpoint_auth_method"] == "tls_client_auth"
    key = body["jwks"]["keys"][0]
    seal = x509.load_pem_x509_certificate(pki.issue().qsealc_pem.read_bytes())
    assert key["x5c"][0] and (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    n = int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4)), "big")
    assert n == seal.public_key().public_numbers().n  # type: ignore[union-attr]
    assert "require_pkce" not in body


def test_a_refused_registration_token_stops_before_posting(
    pki: TestPki, script: Script, clock: FrozenClock
) -> None:
    script.answers.append(httpx.Response(401, json={"error": "invalid_client"}))
    with _client(pki, script, clock, client_id="") as bank, pytest.raises(BankError):
        bank.register(bank.client_metadata("x", ["https://t/cb"]))
    assert len(script.requests) == 1


def test_update_puts_the_full_metadata_with_the_client_id_and_keeps_the_token(
    client: StetBankClient, script: Script, pki: TestPki
) -> None:
    script.answers.append(httpx.Response(200, json={**_registered(), "client_name": "New"}))
    stored = Registration.from_response(_registered())
    updated = client.update_registration(stored, client.client_metadata("New", ["https://t/cb"]))
    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("PUT", "/stet/setting/v1/register/c-1")
    assert sent.headers["Authorization"] == "Bearer RAT"
    assert json.loads(sent.content)["client_id"] == "c-1"
    assert "digest" in _verified(pki, sent)
    assert updated.metadata["client_name"] == "New"
    assert updated.registration_access_token == "RAT"


def test_read_and_delete_use_the_registration_access_token(
    client: StetBankClient, script: Script
) -> None:
    script.answers += [httpx.Response(200, json=_registered()), httpx.Response(204)]
    stored = Registration.from_response(_registered())
    assert client.read_registration(stored).client_id == "c-1"
    client.delete_registration(stored)
    assert [(r.method, r.headers["Authorization"]) for r in script.requests] == [
        ("GET", "Bearer RAT"),
        ("DELETE", "Bearer RAT"),
    ]


def test_a_refused_delete_raises(client: StetBankClient, script: Script) -> None:
    script.answers.append(httpx.Response(403, json={"error": "access_denied"}))
    with pytest.raises(BankError, match="access_denied"):
        client.delete_registration(Registration.from_response(_registered()))


def test_registration_round_trips_through_json() -> None:
    registration = Registration.from_response(_registered())
    assert Registration.from_json(json.loads(json.dumps(registration.to_json()))) == registration


# --- where state goes --------------------------------------------------------------------------
def test_state_dir_is_never_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STETGATE_TPP_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "stetgate-tpp"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "stetgate-tpp"
    monkeypatch.setenv("STETGATE_TPP_HOME", str(tmp_path / "mine"))
    assert default_state_dir() == tmp_path / "mine"


def test_token_file_folder_and_file_are_private(tmp_path: Path) -> None:
    store = TokenFile(tmp_path / "new" / "tokens.json")
    store.put("k", _tokens())
    store.put("k2", _tokens(NOW - timedelta(days=1)))
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(store.stored_keys()) == ["k", "k2"]
    names = sorted(p.name for p in (tmp_path / "new").iterdir())
    assert names == ["tokens.json", "tokens.json.lock"], "no temp left, only the lock file"
    assert stat.S_IMODE((tmp_path / "new" / "tokens.json.lock").stat().st_mode) == 0o600


# --- 429 Retry-After ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"), [("50400", 50400), ("0", 0), ("soon", None), (None, None)]
)
def test_a_429_carries_the_bank_s_retry_after_when_it_is_seconds(
    client: StetBankClient, script: Script, header: str | None, expected: int | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    script.answers.append(httpx.Response(429, json={"message": "limit"}, headers=headers))
    with pytest.raises(BankError) as caught:
        client.api("GET", "accounts", _tokens())
    assert caught.value.status == 429
    assert caught.value.retry_after == expected
