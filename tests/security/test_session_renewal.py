"""OWASP ASVS v4 3.2.1: a new session identifier (and CSRF token) at each authentication step.

Found by an outside attack run: the PSU session cookie and its CSRF token stayed the same from
``/authorize`` through login and SCA, so whoever held the pre-login cookie and token (a shared
device, a planted session) could post the consent once the PSU had done the SCA.
"""

from __future__ import annotations

import re

import httpx
import pytest

from stetgate.psu.sessions import SECURE_COOKIE_NAME
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import CALLBACK, PsuBrowser, add_psu, callback_query
from tests.support.token_side import add_client

ORG = "PSDFR-ACPR-48001"


@pytest.fixture
def client_id(bank: RunningBank, pki: TestPki) -> str:
    add_client(bank.services.engine, pki.issue(ORG, ("AISP",)), bank.clock.now())
    add_psu(bank, "alice")
    return ORG


def cookie(browser: PsuBrowser) -> str:
    value = browser.http.cookies.get(SECURE_COOKIE_NAME)
    assert value
    return value


def attacker_with(bank: RunningBank, stolen_cookie: str) -> httpx.Client:
    http = bank.client(follow_redirects=False)
    http.cookies.set(SECURE_COOKIE_NAME, stolen_cookie, domain="127.0.0.1")
    return http


def test_identification_and_sca_each_issue_a_new_session_and_csrf_token(
    browser: PsuBrowser, client_id: str
) -> None:
    browser.start(client_id)
    before, csrf_before = cookie(browser), browser.csrf
    identified = browser.login()
    after_login = cookie(browser)
    assert after_login != before
    browser.follow(identified)
    if identified.headers["location"] == "/psu/sca/method":
        browser.follow(browser.choose("totp"))
    csrf_sca = browser.csrf
    assert csrf_sca != csrf_before
    authenticated = browser.otp(browser.current_code())
    assert authenticated.headers["location"] == "/psu/consent"
    after_sca = cookie(browser)
    assert after_sca not in (before, after_login)
    browser.follow(authenticated)
    assert browser.csrf not in (csrf_before, csrf_sca)
    assert "code" in callback_query(browser.consent("authorize"), CALLBACK)


def test_the_pre_login_cookie_and_token_cannot_post_the_consent(
    bank: RunningBank, browser: PsuBrowser, client_id: str
) -> None:
    browser.start(client_id)
    stolen_cookie, stolen_csrf = cookie(browser), browser.csrf
    # the victim signs in and passes the SCA on the same journey
    identified = browser.login()
    browser.follow(identified)
    if identified.headers["location"] == "/psu/sca/method":
        browser.follow(browser.choose("totp"))
    response = browser.otp(browser.current_code())
    assert response.headers["location"] == "/psu/consent"
    # the holder of the pre-login cookie and token posts the consent first
    with attacker_with(bank, stolen_cookie) as attacker:
        forged = attacker.post(
            "/psu/consent", data={"decision": "authorize", "csrf_token": stolen_csrf}
        )
        assert forged.status_code != 303 or "code=" not in forged.headers.get("location", "")
        assert forged.status_code in (400, 403, 404, 410), forged.status_code
        assert not re.search(r"[?&]code=", forged.headers.get("location", ""))
        assert attacker.get("/psu/consent").status_code != 200
    # the PSU's own session goes on
    browser.follow(response)
    assert "code" in callback_query(browser.consent("authorize"), CALLBACK)


def test_the_pre_login_cookie_no_longer_opens_the_sca_page(
    bank: RunningBank, browser: PsuBrowser, client_id: str
) -> None:
    browser.start(client_id)
    stolen = cookie(browser)
    identified = browser.login()
    assert identified.status_code == 303
    with attacker_with(bank, stolen) as attacker:
        page = attacker.get(identified.headers["location"])
        assert page.status_code != 200 or "otp" not in page.text
