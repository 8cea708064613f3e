"""Attack matrix, OWASP ASVS 4.0.3 Level 2 — session management (V3), authentication (V2),
CSRF (V4.2.2), sensitive data (V8) and HTTP security headers (V14.4) on the PSU pages.

Each test is one attack on the PSU's browser session at the bank and checks the answer:
refused (400, no redirect, no code) with the database unchanged, or the header that stops it.
One bank serves the module; every test has its own browser (cookie jar).
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from stetgate.psu.sessions import SECURE_COOKIE_NAME
from stetgate.store.schema import authorization_codes
from tests.security.matrix import unchanged
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import PASSWORD, PsuBrowser, add_psu, callback_query
from tests.support.token_side import add_client

ORG = "PSDFR-ACPR-73001"


@pytest.fixture(scope="module")
def client_id(module_bank: RunningBank, pki: TestPki) -> str:
    add_client(
        module_bank.services.engine,
        pki.issue(ORG, ("AISP", "CBPII")),
        module_bank.clock.now(),
        name="Session Matrix",
    )
    add_psu(module_bank, "alice")
    return ORG


@pytest.fixture
def bank(shared_bank: RunningBank, client_id: str) -> RunningBank:
    return shared_bank


def _codes(bank: RunningBank) -> int:
    with bank.services.engine.connect() as conn:
        return len(conn.execute(select(authorization_codes)).all())


def _new_psu(bank: RunningBank) -> str:
    """A PSU of its own for the test (one-time codes are single use on the frozen clock)."""
    psu_id = f"psu-{uuid.uuid4().hex[:8]}"
    add_psu(bank, psu_id)
    return psu_id


def _at_consent(browser: PsuBrowser) -> None:
    response = browser.sign_in_with_totp(ORG, _new_psu(browser.bank))
    assert response.headers["location"] == "/psu/consent"
    browser.follow(response)


# --- V3.4 cookie attributes ------------------------------------------------------------------
def test_session_cookie_is_host_prefixed_secure_httponly_and_samesite(
    browser: PsuBrowser,
) -> None:
    """V3.4.1-3.4.5: ``__Host-`` prefix, ``Secure``, ``HttpOnly``, ``SameSite``, ``Path=/``,
    no ``Domain`` — script cannot read it, no sibling host can set it."""
    response = browser.authorize(ORG)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SECURE_COOKIE_NAME}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "domain" not in attributes
    assert re.search(r"(?i)samesite=(lax|strict)", cookie)
    assert re.search(r"(?i)path=/(;|$)", cookie)


# --- V3.2 session binding and fixation -------------------------------------------------------
def test_attacker_chosen_session_cookie_is_not_adopted(bank: RunningBank) -> None:
    """V3.2.1 session fixation: a planted identifier opens nothing and is replaced."""
    planted = "attacker-chosen-session-id"
    with bank.client(follow_redirects=False) as http:
        http.cookies.set(SECURE_COOKIE_NAME, planted, domain="127.0.0.1")
        assert http.get("/psu/login").status_code == 400
        response = http.get(
            "/stet/psd2/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": ORG,
                "redirect_uri": "https://tpp.example/callback",
                "scope": "aisp",
            },
        )
        assert response.headers["location"] == "/psu/login"
        issued = response.cookies.get(SECURE_COOKIE_NAME)
        assert issued and issued != planted


def test_tampered_session_cookie_opens_nothing(browser: PsuBrowser) -> None:
    """V3.2.3 / V3.5.3: the cookie is authenticated; one changed character is no session."""
    browser.start(ORG)
    value = browser.http.cookies[SECURE_COOKIE_NAME]
    browser.http.cookies.clear()
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    browser.http.cookies.set(SECURE_COOKIE_NAME, forged, domain="127.0.0.1")
    response = browser.get("/psu/login")
    assert response.status_code == 400 and "location" not in response.headers


def test_finished_journey_cookie_cannot_obtain_a_second_code(
    bank: RunningBank, browser: PsuBrowser
) -> None:
    """V3.3.1: once the journey ended at the callback, its session is over."""
    _at_consent(browser)
    csrf = browser.csrf
    assert "code" in callback_query(browser.consent("authorize"))
    codes = _codes(bank)
    again = browser.submit("/psu/consent", {"decision": "authorize"}, csrf=csrf)
    assert "code=" not in again.headers.get("location", "")
    assert _codes(bank) == codes


# --- V4.2.2 / V13.2.3 cross-site request forgery ------------------------------------------------
def test_consent_post_without_csrf_token_is_refused_and_issues_no_code(
    bank: RunningBank, browser: PsuBrowser
) -> None:
    _at_consent(browser)
    with unchanged(bank):
        response = browser.submit("/psu/consent", {"decision": "authorize"}, with_csrf=False)
    assert response.status_code == 400 and "location" not in response.headers


def test_consent_post_with_another_journeys_csrf_token_is_refused(
    bank: RunningBank, browser: PsuBrowser
) -> None:
    with PsuBrowser(bank) as attacker:
        _at_consent(attacker)
        foreign = attacker.csrf
    _at_consent(browser)
    with unchanged(bank):
        response = browser.submit("/psu/consent", {"decision": "authorize"}, csrf=foreign)
    assert response.status_code == 400 and "location" not in response.headers


def test_cross_site_consent_post_without_the_session_cookie_is_refused(
    bank: RunningBank, browser: PsuBrowser
) -> None:
    """A form on another site posts without the ``SameSite`` cookie: no journey, no code."""
    _at_consent(browser)
    csrf = browser.csrf
    with unchanged(bank), bank.client(follow_redirects=False) as cross_site:
        response = cross_site.post(
            "/psu/consent", data={"decision": "authorize", "csrf_token": csrf}
        )
    assert response.status_code == 400 and "location" not in response.headers


# --- V14.4 / V8.2 headers -----------------------------------------------------------------------
def test_psu_pages_cannot_be_framed_for_clickjacking(browser: PsuBrowser) -> None:
    """V14.4.7: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``."""
    _at_consent(browser)
    page = browser.get("/psu/consent")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_psu_pages_allow_no_inline_script_and_post_only_to_the_bank_or_the_tpp(
    browser: PsuBrowser,
) -> None:
    """V14.4.3: a CSP that blocks injected script and forms posting elsewhere."""
    page = browser.start(ORG)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "form-action 'self' https://tpp.example" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_psu_pages_are_not_stored_by_browsers_or_proxies(browser: PsuBrowser) -> None:
    """V8.2.1: ``Cache-Control: no-store`` on every page (no back-button replay)."""
    _at_consent(browser)
    assert browser.get("/psu/consent").headers["cache-control"] == "no-store"


# --- V2 / V8.3 authentication data ----------------------------------------------------------
def test_unknown_user_and_wrong_password_get_identical_answers(
    bank: RunningBank, browser: PsuBrowser
) -> None:
    """No account enumeration: the same page, status and message either way."""
    browser.start(ORG)
    wrong_password = browser.login("alice", "not-the-password")
    unknown_user = browser.login("mallory-not-a-customer", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 200
    message = re.compile(r'<p class="error" role="alert"[^>]*>([^<]+)<')
    found = [message.search(r.text) for r in (wrong_password, unknown_user)]
    assert all(found) and found[0].group(1) == found[1].group(1)  # type: ignore[union-attr]


def test_credentials_never_appear_in_urls_or_come_back_in_the_page(
    browser: PsuBrowser,
) -> None:
    """V8.3.1 / V2.1: identifier and password go in a POST body; a failed login does not
    echo the password."""
    psu_id = _new_psu(browser.bank)
    page = browser.start(ORG)
    assert re.search(r'<form[^>]+method="post"', page.text)
    failed = browser.login(psu_id, "Secret-Guess-42")
    assert "Secret-Guess-42" not in failed.text
    answer = browser.login(psu_id, PASSWORD)
    assert answer.status_code == 303, answer.text[:300]
    assert psu_id not in answer.headers["location"]
    assert PASSWORD not in answer.headers["location"]
