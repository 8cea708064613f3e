"""The whole cinematic (docs/decisions.md#the-cinematic) without a browser, over real TLS with
test-QTSP certificates: the PSU's browser follows the documented forms (authorize → login → SCA
→ consent → callback with code, state, iss) and the TPP then uses its QWAC at the token endpoint
(code → token pair → refresh → revoke). Also the decoupled-SCA variant, PKCE, and the PSU
withdrawing the access from its "connected apps" page. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stetgate.secrets import secret_hash
from stetgate.store.audit_events import (
    AUTHORIZATION_GRANTED,
    GRANT_REVOKED_BY_PSU,
    TOKEN_ISSUED,
    TOKEN_REVOKED,
)
from stetgate.store.schema import grants
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.psu_flow import PsuBrowser, add_psu, callback_query
from tests.support.token_side import (
    CALLBACK,
    REVOKE,
    TOKEN,
    add_client,
    audit_trail,
)

ORG = "PSDFR-ACPR-40010"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B


@pytest.fixture
def tpp(bank: RunningBank, pki: TestPki) -> TppCerts:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    add_client(bank.services.engine, certs, bank.clock.now(), name="Budget Facile")
    add_psu(bank, "alice")
    return certs


def _exchange(bank: RunningBank, tpp: TppCerts, code: str, **extra: str) -> httpx.Response:
    with bank.client(tpp) as http:
        return http.post(
            TOKEN,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "client_id": ORG,
                **extra,
            },
        )


def _refresh(bank: RunningBank, tpp: TppCerts, refresh_token: str) -> httpx.Response:
    with bank.client(tpp) as http:
        return http.post(
            TOKEN,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": ORG},
        )


def _revoke(bank: RunningBank, tpp: TppCerts, token: str) -> httpx.Response:
    with bank.client(tpp) as http:
        return http.post(REVOKE, data={"token": token, "client_id": ORG})


def _active_grants(bank: RunningBank) -> list[Any]:
    with bank.services.engine.connect() as conn:
        return conn.execute(select(grants).where(grants.c.revoked_at.is_(None))).all()


def test_totp_flow_then_token_refresh_and_revoke(bank: RunningBank, tpp: TppCerts) -> None:
    with PsuBrowser(bank) as browser:
        query = browser.authorize_fully(ORG)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == "st-123" and query["iss"] == bank.services.issuer
    issued = _exchange(bank, tpp, query["code"])
    assert issued.status_code == 200, issued.text
    pair = issued.json()
    assert pair["token_type"] == "Bearer" and pair["scope"] == "aisp"
    assert issued.headers["cache-control"] == "no-store"
    bank.clock.advance(600)
    refreshed = _refresh(bank, tpp, pair["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["access_token"] != pair["access_token"]
    assert new["refresh_token"] == pair["refresh_token"]  # BPCE: same refresh token
    assert _revoke(bank, tpp, new["refresh_token"]).status_code == 200
    assert _active_grants(bank) == []
    after = _refresh(bank, tpp, pair["refresh_token"])
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    events = [e["event"] for e in audit_trail(bank.services.engine)]
    for expected in (AUTHORIZATION_GRANTED, TOKEN_ISSUED, TOKEN_REVOKED):
        assert expected in events
    for event in audit_trail(bank.services.engine):
        for secret in (query["code"], pair["access_token"], pair["refresh_token"]):
            assert secret not in repr(event)


def test_decoupled_flow_then_token(bank_factory: Any, pki: TestPki) -> None:
    bank: RunningBank = bank_factory(enable_demo_pages=True)
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    add_client(bank.services.engine, tpp, bank.clock.now(), name="Budget Facile")
    add_psu(bank, "alice")
    with PsuBrowser(bank) as browser:
        browser.start(ORG, scope="cbpii")
        browser.follow(browser.login())
        browser.follow(browser.choose("app"))
        reference = browser.challenge_reference()
        with bank.client() as phone:
            page = phone.get("/demo/phone")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            approved = phone.post(
                "/demo/phone/challenge",
                data={
                    "psu_id": "alice",
                    "challenge_id": reference,
                    "action": "approve",
                    "csrf_token": csrf,
                },
            )
            assert approved.status_code == 200
        assert browser.http.get("/psu/sca/status").json() == {"status": "approved"}
        browser.follow(browser.submit("/psu/sca", {}))
        assert "CBPII" in browser.page.text  # type: ignore[union-attr]
        query = callback_query(browser.consent("authorize"))
    issued = _exchange(bank, tpp, query["code"])
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "cbpii"


def test_pkce_flow_needs_the_verifier(bank: RunningBank, tpp: TppCerts) -> None:
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
    )
    with PsuBrowser(bank) as browser:
        query = browser.authorize_fully(ORG, code_challenge=challenge, code_challenge_method="S256")
    wrong = _exchange(bank, tpp, query["code"], code_verifier="x" * 43)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert _active_grants(bank) == []


def test_pkce_flow_with_the_right_verifier(bank: RunningBank, tpp: TppCerts) -> None:
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
    )
    with PsuBrowser(bank) as browser:
        query = browser.authorize_fully(ORG, code_challenge=challenge, code_challenge_method="S256")
    issued = _exchange(bank, tpp, query["code"], code_verifier=VERIFIER)
    assert issued.status_code == 200, issued.text
    active = _active_grants(bank)
    assert [(g.client_id, g.psu_id, g.scope) for g in active] == [(ORG, "alice", "aisp")]
    assert active[0].access_hash == secret_hash(issued.json()["access_token"])


def test_code_reused_is_refused_and_its_pair_revoked(bank: RunningBank, tpp: TppCerts) -> None:
    with PsuBrowser(bank) as browser:
        code = browser.authorize_fully(ORG)["code"]
    first = _exchange(bank, tpp, code)
    assert first.status_code == 200
    again = _exchange(bank, tpp, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert _active_grants(bank) == []
    refused = _refresh(bank, tpp, first.json()["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"


def test_second_authorization_replaces_the_first_pair(bank: RunningBank, tpp: TppCerts) -> None:
    with PsuBrowser(bank) as browser:
        first = _exchange(bank, tpp, browser.authorize_fully(ORG)["code"]).json()
    bank.clock.advance(30)  # a new TOTP step (the previous one was used)
    with PsuBrowser(bank) as browser:
        second = _exchange(bank, tpp, browser.authorize_fully(ORG)["code"]).json()
    assert len(_active_grants(bank)) == 1
    assert _refresh(bank, tpp, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert _refresh(bank, tpp, second["refresh_token"]).status_code == 200


# --- the PSU's connected apps ---------------------------------------------------------------
def _sign_in_to_connected_apps(bank: RunningBank, browser: PsuBrowser) -> httpx.Response:
    start = browser.http.get("/psu/connected-apps")
    assert start.status_code == 303 and start.headers["location"] == "/psu/login"
    login_page = browser.get("/psu/login")
    assert "applications connectées" in login_page.text
    assert 'action="/psu/cancel"' not in login_page.text
    browser.follow(browser.login())
    browser.follow(browser.choose("totp"))
    answer = browser.otp(browser.current_code())
    assert answer.headers["location"] == "/psu/connected-apps"
    return browser.follow(answer)


@pytest.mark.postgres  # PostgreSQL smoke test of the connected-apps pages
def test_psu_sees_and_withdraws_an_access_from_connected_apps(
    bank: RunningBank, tpp: TppCerts
) -> None:
    with PsuBrowser(bank) as browser:
        pair = _exchange(bank, tpp, browser.authorize_fully(ORG)["code"]).json()
    bank.clock.advance(30)
    with PsuBrowser(bank) as browser:
        page = _sign_in_to_connected_apps(bank, browser)
        assert "Budget Facile" in page.text and "(AISP)" in page.text
        (grant,) = _active_grants(bank)
        assert f'name="grant_id" value="{grant.id}"' in page.text
        before_other = browser.csrf
        asked = browser.submit("/psu/connected-apps/revoke", {"grant_id": grant.id})
        assert asked.status_code == 200 and 'id="apps-confirm"' in asked.text
        assert "Budget Facile" in asked.text
        assert len(_active_grants(bank)) == 1  # nothing withdrawn before the confirmation
        done = browser.submit(
            "/psu/connected-apps/revoke", {"grant_id": grant.id, "confirm": "yes"}
        )
        assert done.status_code == 303  # post/redirect/get: not left on the form's URL
        assert done.headers["location"] == f"/psu/connected-apps?withdrawn={grant.id}"
        listed = browser.follow(done)
        assert 'id="apps-notice"' in listed.text and "Budget Facile" in listed.text
        assert 'id="apps-none"' in listed.text
        again = browser.submit(
            "/psu/connected-apps/revoke", {"grant_id": grant.id}, csrf=before_other
        )
        assert again.status_code == 400
    assert _active_grants(bank) == []
    refused = _refresh(bank, tpp, pair["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert audit_trail(bank.services.engine, GRANT_REVOKED_BY_PSU)


def test_psu_cannot_withdraw_another_psus_access(bank: RunningBank, tpp: TppCerts) -> None:
    with PsuBrowser(bank) as browser:
        _exchange(bank, tpp, browser.authorize_fully(ORG)["code"])
    (alice_grant,) = _active_grants(bank)
    add_psu(bank, "carol", app=False)
    with PsuBrowser(bank) as browser:
        assert browser.http.get("/psu/connected-apps").headers["location"] == "/psu/login"
        browser.get("/psu/login")
        browser.follow(browser.login("carol"))
        page = browser.follow(browser.otp(browser.current_code("carol")))
        assert 'id="apps-none"' in page.text
        refused = browser.submit("/psu/connected-apps/revoke", {"grant_id": alice_grant.id})
        assert refused.status_code == 400
        refused = browser.submit(
            "/psu/connected-apps/revoke", {"grant_id": alice_grant.id, "confirm": "yes"}
        )
        assert refused.status_code == 400
        shown = browser.get("/psu/connected-apps", withdrawn=alice_grant.id)
        assert 'id="apps-notice"' not in shown.text  # another PSU's grant: no notice
    assert len(_active_grants(bank)) == 1


def test_connected_apps_session_expires_after_idle_time(bank: RunningBank, tpp: TppCerts) -> None:
    with PsuBrowser(bank) as browser:
        _sign_in_to_connected_apps(bank, browser)
        bank.clock.advance(bank.settings.psu_idle_timeout_seconds)
        expired = browser.get("/psu/connected-apps")
        assert expired.status_code == 303 and expired.headers["location"] == "/psu/login"
        assert "Identification" in browser.get("/psu/login").text
