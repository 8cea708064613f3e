"""Attack matrix, PSD2 RTS on strong customer authentication, Commission Delegated Regulation
(EU) 2018/389 — Art. 4 (authentication code), Art. 9 (independence of the elements) and
Art. 10 (access without SCA for at most the SCA validity) as the PSU pages and the refresh
grant apply them.

- Art. 4(1): an authentication code is accepted once;
- Art. 4(3)(a): a failure does not say which element was wrong;
- Art. 4(3)(b): at most five failed attempts, then the PSU is blocked for a time;
- Art. 4(3)(d): at most five minutes without activity after authentication.

The unattended-access limit (Art. 36(5)) is in test_stet_signatures.py, with the resource API.
One bank serves the module; each test has its own PSU.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from stetgate.store.schema import authorization_codes, psus
from tests.security.matrix import token_refused
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.psu_flow import (
    PASSWORD,
    PsuBrowser,
    add_psu,
    callback_params,
    expired_return,
)
from tests.support.token_side import add_client, obtain_pair, refresh_form

ORG = "PSDFR-ACPR-74001"
IDLE = 300
BLOCKED = "Accès bloqué"
_ALERT = re.compile(r'<p class="error" role="alert"[^>]*>([^<]+)<')


@pytest.fixture(scope="module")
def tpp(module_bank: RunningBank, pki: TestPki) -> TppCerts:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    add_client(module_bank.services.engine, certs, module_bank.clock.now())
    return certs


@pytest.fixture
def bank(shared_bank: RunningBank, tpp: TppCerts) -> RunningBank:
    return shared_bank


@pytest.fixture
def psu(bank: RunningBank) -> str:
    psu_id = f"psu-{uuid.uuid4().hex[:8]}"
    add_psu(bank, psu_id, app=False)
    return psu_id


def _row(bank: RunningBank, psu_id: str) -> Any:
    with bank.services.engine.connect() as conn:
        return conn.execute(select(psus).where(psus.c.psu_id == psu_id)).mappings().one()


def _codes(bank: RunningBank) -> int:
    with bank.services.engine.connect() as conn:
        return len(conn.execute(select(authorization_codes)).all())


def _alert(text: str) -> str:
    found = _ALERT.search(text)
    assert found, text[:600]
    return found.group(1)


def _denied(bank: RunningBank, location: str, description: str) -> None:
    assert callback_params(location) == {
        "error": "access_denied",
        "error_description": description,
        "state": "st-123",
        "iss": bank.services.issuer,
    }


def _at_otp(browser: PsuBrowser, psu_id: str) -> None:
    browser.start(ORG)
    response = browser.login(psu_id)
    assert response.headers["location"] == "/psu/sca", response.text[:300]
    browser.follow(response)


# --- Art. 4(3)(b) five attempts, then blocked -------------------------------------------------
def test_fifth_wrong_password_blocks_the_psu_and_ends_the_journey(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    browser.start(ORG)
    for attempt in range(4):
        assert BLOCKED not in browser.login(psu, f"guess-{attempt}").text
    blocked = browser.login(psu, "guess-5")
    assert BLOCKED in blocked.text
    _denied(bank, browser.return_link(), "authentication_failed")
    assert _row(bank, psu)["blocked_until"] is not None


def test_blocked_psu_with_the_right_password_gets_the_ordinary_failure(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    """Art. 4(3)(b) + (a): during the block even the right password fails, indistinguishably."""
    browser.start(ORG)
    for attempt in range(5):
        browser.login(psu, f"guess-{attempt}")
    with PsuBrowser(bank) as again:
        again.start(ORG)
        right = again.login(psu, PASSWORD)
        wrong = again.login(psu, "guess-6")
        assert right.status_code == wrong.status_code == 200
        assert _alert(right.text) == _alert(wrong.text)
    assert _codes(bank) == 0


def test_fifth_wrong_one_time_code_blocks_the_psu(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    _at_otp(browser, psu)
    good = browser.current_code(psu)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert BLOCKED not in browser.otp(wrong).text
    csrf = browser.csrf
    assert BLOCKED in browser.otp(wrong).text
    late = browser.submit("/psu/sca", {"otp": good}, csrf=csrf)
    assert BLOCKED in late.text and _codes(bank) == 0


def test_five_unknown_identifiers_end_the_journey_like_a_block(
    bank: RunningBank, browser: PsuBrowser
) -> None:
    """Guessing identifiers is bounded like guessing passwords."""
    browser.start(ORG)
    for attempt in range(4):
        browser.login(f"nobody-{attempt}", "x")
    assert BLOCKED in browser.login("nobody-5", "x").text
    _denied(bank, browser.return_link(), "authentication_failed")


# --- Art. 4(3)(a) which element was wrong --------------------------------------------------------
def test_failed_login_does_not_say_which_element_was_wrong(browser: PsuBrowser, psu: str) -> None:
    browser.start(ORG)
    message = _alert(browser.login(psu, "wrong").text).lower()
    assert "mot de passe" not in message and "identifiant" not in message
    assert "password" not in message


# --- Art. 4(1) authentication code accepted once ---------------------------------------------
def test_one_time_code_is_accepted_only_once(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    _at_otp(browser, psu)
    code = browser.current_code(psu)
    assert browser.otp(code).headers["location"] == "/psu/consent"
    with PsuBrowser(bank) as replay:
        _at_otp(replay, psu)
        refused = replay.otp(code)
        assert refused.status_code == 200 and _alert(refused.text)


# --- Art. 4(3)(d) five minutes without activity --------------------------------------------------
def test_five_idle_minutes_after_authentication_end_the_journey_with_timeout(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    browser.follow(browser.sign_in_with_totp(ORG, psu))
    bank.clock.advance(IDLE)
    # The bank's "session expired" page first (WCAG 2.2.1), its link the timeout callback.
    _denied(bank, expired_return(browser.consent("authorize")), "timeout")
    assert _codes(bank) == 0


def test_one_time_code_sent_after_five_idle_minutes_is_refused_and_not_consumed(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    _at_otp(browser, psu)
    code = browser.current_code(psu)
    bank.clock.advance(IDLE)
    _denied(bank, expired_return(browser.otp(code)), "timeout")
    assert _row(bank, psu)["totp_last_step"] is None


# --- Art. 9 independence of the elements ------------------------------------------------------
def test_one_time_code_without_the_password_step_reaches_nothing(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    """Possession alone: an OTP posted on a journey not past identification is not checked."""
    browser.start(ORG)
    response = browser.submit("/psu/sca", {"otp": browser.current_code(psu)})
    assert response.status_code == 303 and response.headers["location"] == "/psu/login"
    assert _row(bank, psu)["totp_last_step"] is None


def test_password_alone_does_not_reach_the_consent(
    bank: RunningBank, browser: PsuBrowser, psu: str
) -> None:
    """Knowledge alone: after the password the consent page sends back to the SCA."""
    browser.start(ORG)
    assert browser.login(psu).headers["location"] == "/psu/sca"
    assert browser.get("/psu/consent").headers["location"] == "/psu/sca"
    forged = browser.submit("/psu/consent", {"decision": "authorize"})
    assert "code=" not in forged.headers.get("location", "")
    assert _codes(bank) == 0


# --- Art. 10 access without SCA for at most the SCA validity -----------------------------------
def test_refresh_after_the_sca_validity_is_invalid_grant(bank: RunningBank, tpp: TppCerts) -> None:
    from stetgate.oauth.clients import get_client

    with bank.services.engine.connect() as conn:
        client = get_client(conn, ORG)
    assert client is not None
    pair = obtain_pair(bank, tpp, client)
    bank.clock.advance(bank.settings.sca_validity_days * 86400 + 1)
    token_refused(bank, tpp, refresh_form(client, pair["refresh_token"]), "invalid_grant")
