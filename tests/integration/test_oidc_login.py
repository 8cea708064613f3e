"""Delegated PSU login against a REAL OpenID Provider (node ``oidc-provider``, started by the
test; `tests.support.openid_provider`): the bank's OP replaces the password and SCA screens.

One happy cinematic end to end (the TPP gets a code, exchanges it and reads ``/accounts``),
key rotation at the OP, and the negative cases: weak ``acr``, replayed callback, callback in
another browser, unknown state, ``iss`` mix-up, expired ID token (the bank's FrozenClock moved
forward), wrong nonce, a code the OP refuses, ``access_denied`` at the OP, the PSU idle at the
OP (timeout), consent refused after a delegated login, and the password form switched off.
The cinematic and the replay (the one-time ``oidc_logins`` update) also run on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select, update

from stetgate.demo.seed import seed_demo_bank
from stetgate.oidc_login.pages import CALLBACK_PATH, OidcLogin
from stetgate.psu.journeys import STAGE_CONSENT
from stetgate.secrets import secret_hash
from stetgate.store.audit_events import (
    AUTHORIZATION_FAILED,
    OIDC_CALLBACK_REFUSED,
    PSU_AUTHENTICATED_BY_OP,
)
from stetgate.store.schema import oidc_logins
from stetgate.tpp.client import StetBankClient, TppCredentials
from stetgate.tpp.psu_robot import PsuRobot
from tests.integration.psd2_support import cheap_directory, register_client
from tests.support.bank import RunningBank
from tests.support.openid_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    STRONG_ACR,
    WEAK_ACR,
    RunningOp,
    ensure_installed,
)
from tests.support.pki import TestPki, TppCerts
from tests.support.psu_flow import (
    PsuBrowser,
    authorize_params,
    callback_params,
    callback_query,
    expired_return,
    journey_rows,
)
from tests.support.servers import free_port
from tests.support.token_side import CALLBACK, add_client, audit_trail

ORG = "PSDFR-ACPR-40010"
PSU_IP = {"PSU-IP-Address": "198.51.100.23"}


@pytest.fixture(scope="session")
def node() -> str:
    return ensure_installed()


@dataclass
class Delegated:
    bank: RunningBank
    op: RunningOp
    tpp: TppCerts

    @property
    def login(self) -> OidcLogin:
        login = self.bank.app.state.oidc_login
        assert isinstance(login, OidcLogin)
        return login

    def to_op(self, browser: PsuBrowser, **overrides: str | None) -> str:
        """/authorize → /psu/login → the OP's authorization endpoint (returned)."""
        response = browser.authorize(ORG, **overrides)
        assert response.headers.get("location") == "/psu/login", response.text[:300]
        response = browser.http.get("/psu/login")
        assert response.status_code == 303, response.text[:300]
        location: str = response.headers["location"]
        assert location.startswith(f"{self.op.issuer}/auth?"), location
        return location

    def back(self, browser: PsuBrowser, callback_url: str) -> httpx.Response:
        assert callback_url.startswith(self.bank.base_url + CALLBACK_PATH + "?"), callback_url
        return browser.http.get(callback_url)

    def signed_in(self, browser: PsuBrowser, **at_op: Any) -> str:
        """Authorize, sign in at the OP, come back: returns the callback URL used."""
        callback_url = self.op.sign_in(browser.http, self.to_op(browser), **at_op)
        response = self.back(browser, callback_url)
        assert response.headers.get("location") == "/psu/consent", response.text[:300]
        return callback_url


@pytest.fixture
def delegated_factory(
    bank_factory: Callable[..., RunningBank], pki: TestPki, node: str
) -> Iterator[Callable[..., Delegated]]:
    ops: list[RunningOp] = []

    def start(
        *, id_token_ttl: int = 600, client_jwk: str | None = None, **overrides: Any
    ) -> Delegated:
        port = free_port()
        settings: dict[str, Any] = dict(
            oidc_issuer=f"http://127.0.0.1:{port}",
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_acr_values=[STRONG_ACR],
        )
        settings.update(overrides)
        bank = bank_factory(**settings)
        op = RunningOp(
            node,
            port,
            bank.base_url + CALLBACK_PATH,
            id_token_ttl=id_token_ttl,
            client_jwk=client_jwk,
        )
        ops.append(op)
        op.start()
        # The OP stamps iat/auth_time with the real time: the bank's frozen clock starts level
        # with it (the node start-up took a moment), then moves only when a test says so.
        bank.clock.set(datetime.now(UTC))
        tpp = pki.issue(ORG, ("AISP", "CBPII"))
        add_client(bank.services.engine, tpp, bank.clock.now(), name="Budget Facile")
        return Delegated(bank, op, tpp)

    yield start
    for op in ops:
        op.stop()


@pytest.fixture
def delegated(delegated_factory: Callable[..., Delegated]) -> Delegated:
    return delegated_factory()


def _failure(delegated: Delegated, reason: str) -> dict[str, Any]:
    events = audit_trail(delegated.bank.services.engine, AUTHORIZATION_FAILED)
    assert [e["reason"] for e in events] == [reason], events
    return events[0]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- the happy cinematic -------------------------------------------------------------------
@pytest.mark.postgres
def test_full_cinematic_with_login_at_the_banks_op(
    delegated_factory: Callable[..., Delegated], pki: TestPki
) -> None:
    setup = delegated_factory()
    bank, op = setup.bank, setup.op
    seed_demo_bank(bank.settings, 2, now=bank.clock.now(), directory_factory=cheap_directory)
    marie = next(
        p
        for p in json.loads((bank.settings.data_dir / "demo-psus.json").read_text())
        if p["id"] == "mdupont"
    )
    certs = pki.issue("PSDFR-ACPR-47001", ("AISP", "CBPII"))
    register_client(bank.services.engine, certs, bank.clock.now())
    callback = "https://tpp.example/cb"
    with (
        StetBankClient(
            bank.base_url,
            TppCredentials.from_directory(certs.directory),
            certs.org_id,
            ca_file=pki.ca_pem,
            clock=bank.clock,
        ) as tpp,
        PsuBrowser(bank) as browser,
    ):
        request = tpp.authorization_request("aisp", callback)
        assert browser.http.get(request.url).headers["location"] == "/psu/login"
        to_op = browser.http.get("/psu/login", params={"lang": "en"})
        authorization_url = to_op.headers["location"]
        sent = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert sent["response_type"] == "code"
        assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
        assert sent["acr_values"] == STRONG_ACR
        assert sent["prompt"] == "login"
        assert sent["ui_locales"] == "en"
        assert len(sent["state"]) >= 43 and len(sent["nonce"]) >= 43
        assert sent["redirect_uri"] == bank.base_url + CALLBACK_PATH
        _, page = op.login_page(browser.http, authorization_url)
        assert STRONG_ACR in page.text

        back = setup.back(browser, op.sign_in(browser.http, authorization_url, login="mdupont"))
        assert back.headers["location"] == "/psu/consent"
        browser.follow(back)
        final = browser.consent("authorize")
        assert final.headers["location"].startswith(callback + "?")

        tokens = tpp.exchange_code(
            request, final.headers["location"], expected_issuer=bank.services.issuer
        )
        accounts = tpp.api("GET", "accounts", tokens, psu_headers=PSU_IP)
        ibans = [a["accountId"]["iban"] for a in accounts["accounts"] if "iban" in a["accountId"]]
        assert ibans == marie["accounts"]

    (evidence,) = audit_trail(bank.services.engine, PSU_AUTHENTICATED_BY_OP)
    assert evidence["psu_id"] == "mdupont"
    assert evidence["detail"]["iss"] == op.issuer
    assert evidence["detail"]["acr"] == STRONG_ACR
    assert evidence["detail"]["amr"] == ["pwd", "otp"]
    assert evidence["detail"]["auth_time"] is not None
    (row,) = journey_rows(bank)
    assert row["sca_method"] == "oidc" and row["outcome"] == "granted"


@pytest.mark.parametrize(
    ("acr", "outcome"), [(STRONG_ACR, "code"), (WEAK_ACR, "error")], ids=["strong", "weak"]
)
def test_the_tpp_kits_psu_robot_walks_a_delegated_login(
    delegated: Delegated, acr: str, outcome: str
) -> None:
    """`PsuRobot` with ``form_values`` (what benchmarks/cinematics.py --login oidc drives): it
    follows the bank to the OP, fills its form, and comes back to the TPP's callback; with a
    weak ``acr`` that callback carries the refusal."""
    robot = PsuRobot("alice", "", form_values={"login": "alice", "acr": acr, "amr": "pwd otp"})
    with PsuBrowser(delegated.bank) as browser:
        url = f"{delegated.bank.base_url}/stet/psd2/oauth/authorize?" + urlencode(
            authorize_params(ORG)
        )
        back = robot.walk(browser.http, url, CALLBACK)
    query = parse_qs(urlsplit(back).query)
    assert outcome in query, back
    if outcome == "error":
        assert query["error"] == ["access_denied"]
        assert query["error_description"] == ["authentication_failed"]
        assert audit_trail(delegated.bank.services.engine, PSU_AUTHENTICATED_BY_OP) == []
    else:
        (evidence,) = audit_trail(delegated.bank.services.engine, PSU_AUTHENTICATED_BY_OP)
        assert evidence["psu_id"] == "alice" and evidence["detail"]["acr"] == STRONG_ACR


def test_key_rotation_at_the_op_is_followed(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        delegated.signed_in(browser)
    first_kid = delegated.op.kid()
    assert delegated.login.provider.jwks_fetches == 1

    delegated.op.restart()  # a new signing key, same issuer
    delegated.bank.clock.set(datetime.now(UTC))
    assert delegated.op.kid() != first_kid
    with PsuBrowser(delegated.bank) as browser:
        delegated.signed_in(browser)
        browser.get("/psu/consent")
        assert "code" in callback_query(browser.consent("authorize"))
    assert delegated.login.provider.jwks_fetches == 2


def test_private_key_jwt_client_authentication(
    delegated_factory: Callable[..., Delegated], tmp_path: Path
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "stetgate-1"})
    key_file = tmp_path / "oidc-client.pem"
    key_file.write_bytes(key.as_pem(private=True))
    public = json.dumps(key.as_dict(private=False))
    setup = delegated_factory(
        client_jwk=public,
        oidc_client_auth="private_key_jwt",
        oidc_client_secret=None,
        oidc_private_key_file=key_file,
        oidc_private_key_kid="stetgate-1",
    )
    with PsuBrowser(setup.bank) as browser:
        setup.signed_in(browser)
    assert len(audit_trail(setup.bank.services.engine, PSU_AUTHENTICATED_BY_OP)) == 1


def test_private_key_jwt_with_a_key_the_op_does_not_know_fails(
    delegated_factory: Callable[..., Delegated], tmp_path: Path
) -> None:
    registered = RSAKey.generate_key(2048, parameters={"kid": "stetgate-1"})
    other = RSAKey.generate_key(2048, parameters={"kid": "stetgate-1"})
    key_file = tmp_path / "oidc-client.pem"
    key_file.write_bytes(other.as_pem(private=True))
    setup = delegated_factory(
        client_jwk=json.dumps(registered.as_dict(private=False)),
        oidc_client_auth="private_key_jwt",
        oidc_client_secret=None,
        oidc_private_key_file=key_file,
        oidc_private_key_kid="stetgate-1",
    )
    with PsuBrowser(setup.bank) as browser:
        url = setup.op.sign_in(browser.http, setup.to_op(browser))
        query = callback_query(setup.back(browser, url), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    (event,) = audit_trail(setup.bank.services.engine, AUTHORIZATION_FAILED)
    assert event["reason"].startswith("oidc_provider: token endpoint: HTTP 401")


def test_missing_iss_is_refused_when_the_op_announces_it(delegated: Delegated) -> None:
    """RFC 9207 §2.4: the OP's discovery says it sends ``iss``; a response without it is not
    trusted to come from this OP."""
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "iss"}
        stripped = urlunsplit(parts._replace(query=urlencode(query)))
        answer = callback_query(delegated.back(browser, stripped), "https://tpp.example/callback")
    assert answer["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_iss_mismatch")


def test_unknown_kids_refetch_the_jwks_at_most_once_per_period(delegated: Delegated) -> None:
    provider = delegated.login.provider
    provider.keys_for(None)
    provider.keys_for("made-up-1")  # first miss: refetched
    provider.keys_for("made-up-2")  # within oidc_jwks_refetch_seconds: not again
    provider.keys_for("made-up-3")
    assert provider.jwks_fetches == 2


# --- refusals ----------------------------------------------------------------------------------
def test_weak_acr_is_refused(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser), acr=WEAK_ACR)
        query = callback_query(delegated.back(browser, url), "https://tpp.example/callback")
    assert query["error"] == "access_denied"
    assert query["error_description"] == "authentication_failed"
    assert query["state"] == "st-123"
    _failure(delegated, "oidc_id_token: acr")
    assert audit_trail(delegated.bank.services.engine, PSU_AUTHENTICATED_BY_OP) == []


def test_access_denied_at_the_op_fails_the_authentication(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser), abort=True)
        assert parse_qs(urlsplit(url).query)["error"] == ["access_denied"]
        query = callback_query(delegated.back(browser, url), "https://tpp.example/callback")
    assert query["error"] == "access_denied"
    assert query["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_access_denied")
    (row,) = journey_rows(delegated.bank)
    assert row["outcome"] == "sca_rejected"


def test_login_required_from_the_op_fails_the_authentication(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        authorization_url = delegated.to_op(browser)
        state = parse_qs(urlsplit(authorization_url).query)["state"][0]
        forged = (
            delegated.bank.base_url
            + CALLBACK_PATH
            + "?"
            + urlencode({"error": "login_required", "state": state, "iss": delegated.op.issuer})
        )
        query = callback_query(delegated.back(browser, forged), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_login_required")


@pytest.mark.postgres
def test_replayed_callback_is_refused(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        callback_url = delegated.signed_in(browser)
        again = delegated.back(browser, callback_url)
        assert again.status_code == 400
        (row,) = journey_rows(delegated.bank)
        assert row["stage"] == STAGE_CONSENT and row["outcome"] is None
        browser.get("/psu/consent")
        assert "code" in callback_query(browser.consent("authorize"))
    (refused,) = audit_trail(delegated.bank.services.engine, OIDC_CALLBACK_REFUSED)
    assert refused["reason"] == "replayed"
    assert len(audit_trail(delegated.bank.services.engine, PSU_AUTHENTICATED_BY_OP)) == 1


def test_callback_in_another_browser_is_refused(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser, PsuBrowser(delegated.bank) as attacker:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        assert delegated.back(attacker, url).status_code == 400
        (row,) = journey_rows(delegated.bank)
        assert row["stage"] == "identify"
        # the PSU's own browser still completes (the state was not consumed)
        assert delegated.back(browser, url).headers["location"] == "/psu/consent"
    (refused,) = audit_trail(delegated.bank.services.engine, OIDC_CALLBACK_REFUSED)
    assert refused["reason"] == "other_session"


def test_unknown_state_is_refused(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        assert delegated.back(browser, _with_query(url, state="forged")).status_code == 400
        assert browser.http.get(CALLBACK_PATH).status_code == 400
    reasons = [e["reason"] for e in audit_trail(delegated.bank.services.engine)]
    assert reasons.count("unknown_state") == 2


def test_iss_of_another_issuer_is_refused(delegated: Delegated) -> None:
    """RFC 9207 §2.4: a response claiming another issuer is a mix-up; nothing is redeemed."""
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        tampered = _with_query(url, iss="https://evil.example")
        query = callback_query(delegated.back(browser, tampered), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_iss_mismatch")


def test_expired_id_token_is_refused(delegated_factory: Callable[..., Delegated]) -> None:
    setup = delegated_factory(id_token_ttl=60, psu_idle_timeout_seconds=900)
    with PsuBrowser(setup.bank) as browser:
        url = setup.op.sign_in(browser.http, setup.to_op(browser))
        setup.bank.clock.advance(60 + setup.bank.settings.oidc_leeway_seconds + 1)
        query = callback_query(setup.back(browser, url), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    _failure(setup, "oidc_id_token: expired")


def test_id_token_from_the_future_is_refused(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        delegated.bank.clock.advance(-120)
        query = callback_query(delegated.back(browser, url), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_id_token: iat_in_future")


def test_authentication_older_than_the_journey_is_refused(delegated: Delegated) -> None:
    """The OP's ``auth_time`` must fall within the journey: the bank's clock is moved so that
    the journey starts after the PSU's authentication at the OP."""
    delegated.bank.clock.advance(120)
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        query = callback_query(delegated.back(browser, url), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_id_token: auth_time_stale")


def test_wrong_nonce_is_refused(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        with delegated.bank.services.engine.begin() as conn:
            conn.execute(update(oidc_logins).values(nonce_hash=secret_hash("another nonce")))
        query = callback_query(delegated.back(browser, url), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    _failure(delegated, "oidc_id_token: nonce")


def test_code_the_op_refuses_fails_the_authentication(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        query = callback_query(
            delegated.back(browser, _with_query(url, code="not-a-code")),
            "https://tpp.example/callback",
        )
    assert query["error_description"] == "authentication_failed"
    (event,) = audit_trail(delegated.bank.services.engine, AUTHORIZATION_FAILED)
    assert event["reason"].startswith("oidc_provider: token endpoint: HTTP 400")


def test_wrong_pkce_verifier_is_refused_by_the_op(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        with delegated.bank.services.engine.begin() as conn:
            conn.execute(update(oidc_logins).values(code_verifier="x" * 43))
        query = callback_query(delegated.back(browser, url), "https://tpp.example/callback")
    assert query["error_description"] == "authentication_failed"
    assert audit_trail(delegated.bank.services.engine, PSU_AUTHENTICATED_BY_OP) == []


def test_psu_idle_at_the_op_times_out(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        url = delegated.op.sign_in(browser.http, delegated.to_op(browser))
        delegated.bank.clock.advance(delegated.bank.settings.psu_idle_timeout_seconds + 1)
        expired = delegated.back(browser, url)  # the bank's "session expired" page first
        query = callback_params(expired_return(expired), "https://tpp.example/callback")
    assert query["error"] == "access_denied"
    assert query["error_description"] == "timeout"
    with delegated.bank.services.engine.connect() as conn:
        assert conn.execute(select(oidc_logins.c.used_at)).scalar_one() is None


def test_consent_refused_after_a_delegated_login(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        delegated.signed_in(browser)
        browser.get("/psu/consent")
        query = callback_query(browser.consent("refuse"), "https://tpp.example/callback")
    assert query["error"] == "access_denied"
    assert query["error_description"] == "consent_refused"


def test_password_form_is_switched_off(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        delegated.to_op(browser)
        response = browser.http.post("/psu/login", data={"psu_id": "alice", "password": "x"})
        assert response.status_code == 303 and response.headers["location"] == "/psu/login"
        (row,) = journey_rows(delegated.bank)
        assert row["stage"] == "identify" and row["psu_id"] is None


def test_connected_apps_sign_in_goes_through_the_op(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        assert browser.http.get("/psu/connected-apps").headers["location"] == "/psu/login"
        to_op = browser.http.get("/psu/login").headers["location"]
        assert to_op.startswith(f"{delegated.op.issuer}/auth?")
        back = delegated.back(browser, delegated.op.sign_in(browser.http, to_op))
        assert back.headers["location"] == "/psu/connected-apps"
        assert browser.follow(back).status_code == 200
    (row,) = journey_rows(delegated.bank)
    assert row["kind"] == "connected_apps" and row["psu_id"] == "alice"


def test_connected_apps_sign_in_refused_at_the_op_signs_out(delegated: Delegated) -> None:
    with PsuBrowser(delegated.bank) as browser:
        browser.http.get("/psu/connected-apps")
        to_op = browser.http.get("/psu/login").headers["location"]
        back = delegated.back(browser, delegated.op.sign_in(browser.http, to_op, acr=WEAK_ACR))
        assert back.status_code == 200
    (row,) = journey_rows(delegated.bank)
    assert row["outcome"] == "sca_rejected" and row["psu_id"] is None
