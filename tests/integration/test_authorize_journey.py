"""The PSU's walk through the bank's pages, followed by form names as a TPP's automated test
does: identification, SCA (one-time code and banking app), consent, and every callback outcome
of docs/decisions.md#callback-outcomes — including idle and whole-journey timeouts with the
injected clock, late form submissions, CSRF, blocking after failed attempts and one-time-code
replay. Real TLS; SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from stetgate.oauth.clients import CLIENT_SUSPENDED, set_status
from stetgate.store.audit_events import (
    AUTHORIZATION_GRANTED,
    AUTHORIZATION_REFUSED,
    AUTHORIZATION_STARTED,
    AUTHORIZATION_TIMED_OUT,
    DECOUPLED_SCA_APPROVED,
    PSU_AUTHENTICATED,
    PSU_BLOCKED,
)
from stetgate.store.schema import authorization_codes, psus
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import (
    PASSWORD,
    PsuBrowser,
    add_budget_facile,
    add_psu,
    callback_keys,
    callback_params,
    callback_query,
    directory,
    expired_return,
    journey_rows,
)
from tests.support.token_side import add_client, audit_trail, database_state

ORG = "PSDFR-ACPR-40002"
IDLE = 300
JOURNEY = 1800


@pytest.fixture
def client_id(bank: RunningBank, pki: TestPki) -> str:
    add_budget_facile(bank, pki, ORG)
    return ORG


def _expect_denied(bank: RunningBank, location: str, description: str) -> None:
    query = callback_params(location)
    assert query == {
        "error": "access_denied",
        "error_description": description,
        "state": "st-123",
        "iss": bank.services.issuer,
    }
    assert callback_keys(location) == ["error", "error_description", "state", "iss"]


def _codes(bank: RunningBank) -> int:
    with bank.services.engine.connect() as conn:
        return len(conn.execute(select(authorization_codes)).all())


def _psu_row(bank: RunningBank, psu_id: str = "alice") -> Any:
    with bank.services.engine.connect() as conn:
        return conn.execute(select(psus).where(psus.c.psu_id == psu_id)).mappings().one()


# --- the happy path and its page rules -----------------------------------------------------
@pytest.mark.postgres  # PostgreSQL smoke test of the PSU pages
def test_totp_journey_ends_at_the_callback_with_code_state_and_iss(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    query = browser.authorize_fully(client_id)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == "st-123" and query["iss"] == bank.services.issuer
    assert len(query["code"]) >= 43
    (row,) = journey_rows(bank)
    assert (row["stage"], row["outcome"], row["psu_id"]) == ("done", "granted", "alice")
    events = [e["event"] for e in audit_trail(bank.services.engine)]
    assert events == [AUTHORIZATION_STARTED, PSU_AUTHENTICATED, AUTHORIZATION_GRANTED]
    assert all(query["code"] not in repr(e) for e in audit_trail(bank.services.engine))


def test_every_page_carries_the_security_headers_and_no_psu_data_in_urls(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    pages = [browser.start(client_id)]
    answer = browser.login()
    assert answer.headers["location"] == "/psu/sca/method"
    assert "alice" not in answer.headers["location"]
    pages.append(browser.follow(answer))
    pages.append(browser.follow(browser.choose("totp")))
    pages.append(browser.follow(browser.otp(browser.current_code())))
    for page in pages:
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "form-action 'self' https://tpp.example" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text  # scripts only as files (CSP, no inline)
        assert 'name="csrf_token"' in page.text
        assert (
            str(page.url)
            .split("?")[0]
            .endswith(("/psu/login", "/psu/sca/method", "/psu/sca", "/psu/consent"))
        )
    login, method, otp, consent = pages
    assert 'for="psu_id"' in login.text and 'for="password"' in login.text
    assert 'name="method" value="totp"' in method.text and 'value="app"' in method.text
    assert 'for="otp"' in otp.text and 'name="otp"' in otp.text
    assert 'name="decision" value="authorize"' in consent.text
    assert 'name="decision" value="refuse"' in consent.text
    assert "Budget Facile" in consent.text and "AISP" in consent.text


def test_pages_are_french_by_default_and_english_on_request(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    page = browser.start(client_id)
    assert '<html lang="fr">' in page.text and "Identifiant client" in page.text
    english = browser.get("/psu/login", lang="en")
    assert '<html lang="en">' in english.text and "Customer ID" in english.text
    # the choice is kept in the journey
    after = browser.follow(browser.login())
    assert '<html lang="en">' in after.text


def test_the_sca_method_choice_is_skipped_when_only_one_is_enrolled(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    add_psu(bank, "bob", app=False)
    browser.start(client_id)
    answer = browser.login("bob")
    assert answer.headers["location"] == "/psu/sca"
    assert 'name="otp"' in browser.follow(answer).text


def test_a_page_out_of_order_sends_the_browser_to_the_current_screen(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    assert browser.get("/psu/consent").headers["location"] == "/psu/login"
    response = browser.submit("/psu/consent", {"decision": "authorize"})
    assert response.headers["location"] == "/psu/login"
    assert _codes(bank) == 0


# --- outcomes at the callback ---------------------------------------------------------------
def test_refused_consent_returns_access_denied_consent_refused(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.follow(browser.sign_in_with_totp(client_id))
    _expect_denied(bank, browser.consent("refuse").headers["location"], "consent_refused")
    assert _codes(bank) == 0
    assert audit_trail(bank.services.engine, AUTHORIZATION_REFUSED)


def test_cancel_on_the_identification_page_is_an_interruption_not_a_refusal(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    _expect_denied(bank, browser.submit("/psu/cancel", {}).headers["location"], "cancelled")
    assert _codes(bank) == 0
    assert audit_trail(bank.services.engine, AUTHORIZATION_REFUSED)


def test_cancel_on_the_consent_page_is_cancelled_and_refuse_stays_consent_refused(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.follow(browser.sign_in_with_totp(client_id))
    _expect_denied(bank, browser.submit("/psu/cancel", {}).headers["location"], "cancelled")
    assert _codes(bank) == 0


def test_an_unknown_decision_changes_nothing(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.follow(browser.sign_in_with_totp(client_id))
    before = database_state(bank.services.engine)
    assert browser.consent("maybe").status_code == 400
    assert database_state(bank.services.engine) == before


@pytest.mark.postgres  # the journey's compare-and-set
def test_consent_submitted_twice_issues_one_code(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.follow(browser.sign_in_with_totp(client_id))
    csrf = browser.csrf
    callback_query(browser.consent("authorize"))
    again = browser.submit("/psu/consent", {"decision": "authorize"}, csrf=csrf)
    assert again.status_code == 200 and "location" not in again.headers
    assert _codes(bank) == 1


def test_client_suspended_during_the_journey_gets_no_code(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.follow(browser.sign_in_with_totp(client_id))
    with bank.services.engine.begin() as conn:
        set_status(conn, client_id, CLIENT_SUSPENDED, bank.clock.now())
    _expect_denied(bank, browser.consent("authorize").headers["location"], "client_suspended")
    assert _codes(bank) == 0


def test_certificate_revoked_during_the_journey_gets_no_code(
    bank: RunningBank, pki: TestPki, browser: PsuBrowser
) -> None:
    tpp = pki.issue("PSDFR-ACPR-40003", ("AISP",), fresh=True)
    add_client(bank.services.engine, tpp, bank.clock.now())
    add_psu(bank, "alice")
    browser.follow(browser.sign_in_with_totp("PSDFR-ACPR-40003"))
    pki.revoke(tpp.qwac_pem)
    bank.clock.set(pki.clock.now())  # the new CRL is dated by the QTSP's clock
    _expect_denied(bank, browser.consent("authorize").headers["location"], "certificate_revoked")
    assert _codes(bank) == 0


# --- timeouts (docs/decisions.md#lifetimes: idle 300 s per screen, 1800 s overall) -----------
def test_idle_timeout_on_a_screen_returns_timeout(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    bank.clock.advance(IDLE - 1)
    assert browser.get("/psu/login").status_code == 200  # activity restarts the idle timer
    bank.clock.advance(IDLE)
    _expect_denied(bank, expired_return(browser.get("/psu/login")), "timeout")
    (row,) = journey_rows(bank)
    assert (row["stage"], row["outcome"]) == ("done", "timeout")
    assert audit_trail(bank.services.engine, AUTHORIZATION_TIMED_OUT)


def test_a_late_form_submission_returns_timeout_and_does_nothing_else(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    browser.follow(browser.login())
    browser.follow(browser.choose("totp"))
    code = browser.current_code()
    bank.clock.advance(IDLE)
    _expect_denied(bank, expired_return(browser.otp(code)), "timeout")
    assert _psu_row(bank)["totp_last_step"] is None  # the code was not consumed
    assert _codes(bank) == 0


def test_a_late_consent_returns_timeout_and_no_code(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.follow(browser.sign_in_with_totp(client_id))
    bank.clock.advance(IDLE + 1)
    _expect_denied(bank, expired_return(browser.consent("authorize")), "timeout")
    assert _codes(bank) == 0


def test_whole_journey_timeout_applies_even_with_activity(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    for _ in range(JOURNEY // (IDLE - 60)):
        bank.clock.advance(IDLE - 60)
        assert browser.get("/psu/login").status_code == 200
    bank.clock.advance(JOURNEY - (JOURNEY // (IDLE - 60)) * (IDLE - 60))
    _expect_denied(bank, expired_return(browser.get("/psu/login")), "timeout")


def test_the_page_timer_gets_the_server_computed_seconds_left(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    page = browser.start(client_id)
    assert 'data-seconds="300"' in page.text
    assert '<script src="/psu/static/timer.js" defer></script>' in page.text
    for _ in range(6):
        bank.clock.advance(IDLE - 50)
        page = browser.get("/psu/login")
    left = JOURNEY - 6 * (IDLE - 50)
    assert f'data-seconds="{left}"' in page.text


def test_the_timer_form_ends_the_journey_with_timeout(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    _expect_denied(bank, expired_return(browser.submit("/psu/timeout", {})), "timeout")
    again = browser.get("/psu/login")  # the same bank page, still with the way back
    assert again.status_code == 200 and "Session expirée" in again.text
    _expect_denied(bank, expired_return(again), "timeout")


def test_static_files_are_served(bank: RunningBank) -> None:
    with bank.client() as http:
        for name, kind in (
            ("psu.css", "text/css"),
            ("timer.js", "javascript"),
            ("poll.js", "javascript"),
        ):
            response = http.get(f"/psu/static/{name}")
            assert response.status_code == 200 and kind in response.headers["content-type"]


# --- CSRF and sessions ----------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(
    bank: RunningBank, client_id: str, browser: PsuBrowser, token: str | None
) -> None:
    browser.start(client_id)
    before = database_state(bank.services.engine)
    bank.clock.advance(5)
    response = browser.submit(
        "/psu/login",
        {"psu_id": "alice", "password": PASSWORD},
        csrf=token,
        with_csrf=token is not None,
    )
    assert response.status_code == 400 and "location" not in response.headers
    assert database_state(bank.services.engine) == before
    assert _psu_row(bank)["failed_attempts"] == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("&".join(f"f{i}=x" for i in range(40)), "application/x-www-form-urlencoded"),
        ("--x\r\nbroken", "multipart/form-data; boundary=x"),
    ],
)
def test_a_form_the_parser_refuses_is_the_bad_form_page_and_changes_nothing(
    bank: RunningBank, client_id: str, browser: PsuBrowser, body: str, content_type: str
) -> None:
    """Over the field limit or malformed multipart: the themed 400 page, not the parser's
    plain-text answer (found by scripts/fuzz.py)."""
    browser.start(client_id)
    before = database_state(bank.services.engine)
    response = browser.http.post(
        "/psu/login",
        content=body + f"&csrf_token={browser.csrf}",
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert database_state(bank.services.engine) == before
    assert _psu_row(bank)["failed_attempts"] == 0


def test_csrf_token_of_another_journey_is_refused(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    with PsuBrowser(bank) as other:
        other.start(client_id)
        foreign = other.csrf
    browser.start(client_id)
    before = database_state(bank.services.engine)
    assert (
        browser.submit(
            "/psu/login", {"psu_id": "alice", "password": PASSWORD}, csrf=foreign
        ).status_code
        == 400
    )
    assert database_state(bank.services.engine) == before


def test_pages_without_a_session_cookie_show_an_error_page(bank: RunningBank) -> None:
    with bank.client() as http:
        for path in ("/psu/login", "/psu/sca", "/psu/consent"):
            response = http.get(path)
            assert response.status_code == 400 and "location" not in response.headers
        assert http.post("/psu/consent", data={"decision": "authorize"}).status_code == 400


def test_a_tampered_session_cookie_is_ignored(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    name = "__Host-stetgate-psu"
    value = browser.http.cookies[name]
    browser.http.cookies.clear()
    browser.http.cookies.set(
        name, value[:-2] + ("AA" if not value.endswith("AA") else "BB"), domain="127.0.0.1"
    )
    assert browser.get("/psu/login").status_code == 400


# --- failed attempts (RTS Art. 4(3)(a)(b)) ------------------------------------------------------
def _message(page: str) -> str:
    found = re.search(r'<p class="error" role="alert"[^>]*>([^<]+)<', page)
    assert found, page[:600]
    return found.group(1)


def test_wrong_password_and_unknown_id_get_the_same_answer(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    wrong_password = browser.login("alice", "nope")
    unknown_id = browser.login("mallory", PASSWORD)
    assert wrong_password.status_code == unknown_id.status_code == 200
    assert _message(wrong_password.text) == _message(unknown_id.text)
    text = _message(wrong_password.text).lower()
    assert "mot de passe" not in text and "identifiant" not in text
    assert _psu_row(bank)["failed_attempts"] == 1


def test_six_wrong_passwords_block_the_psu_without_saying_which_element_was_wrong(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    csrf = browser.csrf
    for _ in range(4):
        assert 'role="alert"' in browser.login("alice", "wrong").text
    fifth = browser.login("alice", "wrong")
    assert "Accès bloqué" in fifth.text and "15 minutes" in fifth.text
    assert "mot de passe" not in fifth.text.lower()
    _expect_denied(bank, browser.return_link(), "authentication_failed")
    sixth = browser.submit("/psu/login", {"psu_id": "alice", "password": "wrong"}, csrf=csrf)
    assert "Accès bloqué" in sixth.text
    row = _psu_row(bank)
    assert row["blocked_until"] is not None and row["failed_attempts"] == 0
    assert _codes(bank) == 0
    assert len(audit_trail(bank.services.engine, PSU_BLOCKED)) == 1
    # during the block the right password gets the ordinary failure, like a wrong one (no
    # oracle, RTS Art. 4(3)(b)), and is counted; no code
    with PsuBrowser(bank) as again:
        again.start(client_id)
        right = again.login("alice", PASSWORD)
        wrong = again.login("alice", "wrong")
        assert "Accès bloqué" not in right.text
        assert _message(right.text) == _message(wrong.text)
        assert _psu_row(bank)["failed_attempts"] == 2
    assert _codes(bank) == 0
    # until the block ends (or `stetgate psu unblock`)
    bank.clock.advance(bank.settings.psu_block_seconds + 1)
    with PsuBrowser(bank) as later:
        later.start(client_id)
        assert later.login("alice", PASSWORD).headers["location"] == "/psu/sca/method"


def test_a_blocked_psu_gets_the_ordinary_failure_whatever_the_password(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    directory(bank).block("alice", bank.clock.now() + timedelta(days=36500))  # for good
    browser.start(client_id)
    wrong = browser.login("alice", "wrong")
    right = browser.login("alice", PASSWORD)
    assert "Accès bloqué" not in wrong.text and "Accès bloqué" not in right.text
    assert _message(wrong.text) == _message(right.text)


def test_five_unknown_ids_end_the_journey_like_a_block(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    for _ in range(4):
        browser.login("nobody", "x")
    assert "Accès bloqué" in browser.login("nobody", "x").text
    _expect_denied(bank, browser.return_link(), "authentication_failed")
    assert _psu_row(bank)["failed_attempts"] == 0


def test_five_wrong_one_time_codes_block_the_psu(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    browser.follow(browser.login())
    browser.follow(browser.choose("totp"))
    good = browser.current_code()
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(4):
        page = browser.otp(wrong)
        assert page.status_code == 200 and "L'authentification a échoué" in page.text.replace(
            "&#39;", "'"
        )
    csrf = browser.csrf
    blocked = browser.otp(wrong)
    assert "Accès bloqué" in blocked.text
    _expect_denied(bank, browser.return_link(), "authentication_failed")
    assert _psu_row(bank)["blocked_until"] is not None
    late = browser.submit("/psu/sca", {"otp": good}, csrf=csrf)
    assert "Accès bloqué" in late.text and _codes(bank) == 0
    assert _psu_row(bank)["totp_last_step"] is None


def test_a_one_time_code_cannot_be_used_twice(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.authorize_fully(client_id)
    code = browser.current_code()
    with PsuBrowser(bank) as again:
        again.start(client_id)
        again.follow(again.login())
        again.follow(again.choose("totp"))
        replay = again.otp(code)
        assert replay.status_code == 200 and 'role="alert"' in replay.text
        bank.clock.advance(30)
        assert again.otp(again.current_code()).headers["location"] == "/psu/consent"


REUSED_FR = "Ce code a déjà été utilisé"
REUSED_EN = "This code has already been used"


def _reused_code_on_a_new_journey(bank: RunningBank, client_id: str, browser: PsuBrowser) -> str:
    """A code the PSU used in a finished journey, and ``browser`` at the code page of a new
    journey in the same time step."""
    with PsuBrowser(bank) as first:
        first.authorize_fully(client_id)
    code = browser.current_code()
    browser.start(client_id)
    browser.follow(browser.login())
    browser.follow(browser.choose("totp"))
    return code


def test_a_reused_one_time_code_says_so_and_counts_like_a_wrong_one(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    code = _reused_code_on_a_new_journey(bank, client_id, browser)
    engine = bank.services.engine
    used_step = _psu_row(bank)["totp_last_step"]
    reused = browser.otp(code)
    text = reused.text.replace("&#39;", "'")
    assert reused.status_code == 200 and REUSED_FR in text and 'role="alert"' in text
    assert "L'authentification a échoué" not in text
    assert _psu_row(bank)["failed_attempts"] == 1
    assert _psu_row(bank)["totp_last_step"] == used_step
    failures = audit_trail(engine, "authentication_failed")
    assert [(e["reason"], e["detail"]["journey_failures"]) for e in failures] == [
        ("sca_totp_reused", 1)
    ]
    wrong = browser.otp(f"{(int(code) + 1) % 1_000_000:06d}")
    text = wrong.text.replace("&#39;", "'")
    assert "L'authentification a échoué" in text and REUSED_FR not in text
    assert _psu_row(bank)["failed_attempts"] == 2
    assert audit_trail(engine, "authentication_failed")[-1]["reason"] == "sca_totp"


def test_the_reused_code_message_is_in_the_page_language(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    code = _reused_code_on_a_new_journey(bank, client_id, browser)
    browser.get("/psu/sca", lang="en")
    reused = browser.otp(code)
    assert REUSED_EN in reused.text and REUSED_FR not in reused.text


def test_five_reused_codes_block_the_psu_like_wrong_ones(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    code = _reused_code_on_a_new_journey(bank, client_id, browser)
    for _ in range(4):
        assert REUSED_FR in browser.otp(code).text
    blocked = browser.otp(code)
    assert "Accès bloqué" in blocked.text
    _expect_denied(bank, browser.return_link(), "authentication_failed")
    assert _psu_row(bank)["blocked_until"] is not None and _codes(bank) == 1


def test_a_successful_sca_restarts_the_failure_count(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    for _ in range(3):
        browser.login("alice", "wrong")
    browser.follow(browser.login())
    browser.follow(browser.choose("totp"))
    browser.otp(browser.current_code())
    assert _psu_row(bank)["failed_attempts"] == 0


# --- decoupled SCA ("confirm in your banking app") ------------------------------------------
def _to_app_page(browser: PsuBrowser, client_id: str) -> str:
    browser.start(client_id)
    browser.follow(browser.login())
    page = browser.follow(browser.choose("app"))
    assert 'src="/psu/static/poll.js"' in page.text
    assert 'id="app-confirm-form"' in page.text
    return browser.challenge_reference()


def _status(browser: PsuBrowser) -> str:
    response = browser.http.get("/psu/sca/status")
    assert response.headers["cache-control"] == "no-store"
    status: str = response.json()["status"]
    return status


def _phone(bank: RunningBank, psu_id: str, reference: str, action: str) -> str:
    """The demo phone page, as a developer uses it: show the phone, press a button."""
    import httpx

    with bank.client(follow_redirects=False) as phone:
        page = phone.get("/demo/phone")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        shown = phone.post("/demo/phone", data={"psu_id": psu_id, "csrf_token": csrf})
        assert reference in shown.text
        challenge_id = reference.replace("-", "")
        answered: httpx.Response = phone.post(
            "/demo/phone/challenge",
            data={
                "psu_id": psu_id,
                "challenge_id": challenge_id,
                "action": action,
                "csrf_token": csrf,
            },
        )
        return answered.text


@pytest.fixture
def demo_bank(bank_factory: Any, pki: TestPki) -> RunningBank:
    bank: RunningBank = bank_factory(enable_demo_pages=True)
    add_budget_facile(bank, pki, ORG)
    return bank


@pytest.mark.postgres  # PostgreSQL smoke test of the decoupled SCA pages
def test_decoupled_sca_approved_in_the_app_reaches_consent(demo_bank: RunningBank) -> None:
    with PsuBrowser(demo_bank) as browser:
        reference = _to_app_page(browser, ORG)
        assert _status(browser) == "pending"
        not_yet = browser.submit("/psu/sca", {})
        assert not_yet.status_code == 200 and "pas encore" in not_yet.text
        assert "Demande" in _phone(demo_bank, "alice", reference, "approve")
        assert _status(browser) == "approved"
        assert browser.submit("/psu/sca", {}).headers["location"] == "/psu/consent"
        browser.get("/psu/consent")
        assert set(callback_query(browser.consent("authorize"))) == {"code", "state", "iss"}
    events = [e["event"] for e in audit_trail(demo_bank.services.engine)]
    assert DECOUPLED_SCA_APPROVED in events


def test_decoupled_sca_rejected_in_the_app_returns_authentication_failed(
    demo_bank: RunningBank,
) -> None:
    with PsuBrowser(demo_bank) as browser:
        reference = _to_app_page(browser, ORG)
        _phone(demo_bank, "alice", reference, "reject")
        assert _status(browser) == "rejected"
        _expect_denied(
            demo_bank, browser.submit("/psu/sca", {}).headers["location"], "authentication_failed"
        )
    assert _codes(demo_bank) == 0


@pytest.mark.postgres  # the challenge's compare-and-set
def test_a_challenge_cannot_be_answered_for_another_psu_or_twice(demo_bank: RunningBank) -> None:
    add_psu(demo_bank, "bob")
    with PsuBrowser(demo_bank) as browser:
        reference = _to_app_page(browser, ORG)
        with demo_bank.client() as phone:
            page = phone.get("/demo/phone")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            answer = phone.post(
                "/demo/phone/challenge",
                data={
                    "psu_id": "bob",
                    "challenge_id": reference,
                    "action": "approve",
                    "csrf_token": csrf,
                },
            )
            assert "plus en attente" in answer.text
        assert _status(browser) == "pending"
        _phone(demo_bank, "alice", reference, "approve")
        assert "plus en attente" in _phone_again(demo_bank, reference)


def _phone_again(bank: RunningBank, reference: str) -> str:
    with bank.client() as phone:
        page = phone.get("/demo/phone")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        return phone.post(
            "/demo/phone/challenge",
            data={
                "psu_id": "alice",
                "challenge_id": reference,
                "action": "reject",
                "csrf_token": csrf,
            },
        ).text


def test_the_demo_phone_refuses_forms_without_its_csrf_token(demo_bank: RunningBank) -> None:
    with PsuBrowser(demo_bank) as browser:
        reference = _to_app_page(browser, ORG)
        with demo_bank.client() as phone:
            answer = phone.post(
                "/demo/phone/challenge",
                data={"psu_id": "alice", "challenge_id": reference, "action": "approve"},
            )
            assert answer.status_code == 400
        assert _status(browser) == "pending"


def test_the_demo_phone_shows_the_current_code(demo_bank: RunningBank) -> None:
    with demo_bank.client() as phone:
        page = phone.get("/demo/phone")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        shown = phone.post("/demo/phone", data={"psu_id": "alice", "csrf_token": csrf})
    code = directory(demo_bank).current_totp("alice", demo_bank.clock.now())
    assert f'id="totp-code">{code}<' in shown.text


def test_demo_pages_are_not_routed_unless_enabled(bank: RunningBank) -> None:
    with bank.client() as http:
        assert http.get("/demo/phone").status_code == 404


def test_the_status_poll_reports_expiry_without_ending_the_journey(demo_bank: RunningBank) -> None:
    with PsuBrowser(demo_bank) as browser:
        _to_app_page(browser, ORG)
        demo_bank.clock.advance(IDLE)
        assert _status(browser) == "expired"
        assert journey_rows(demo_bank)[0]["stage"] == "sca"
        _expect_denied(demo_bank, expired_return(browser.submit("/psu/sca", {})), "timeout")


def test_a_psu_without_any_sca_method_cannot_complete_authentication(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    add_psu(bank, "dora", app=False, totp=False)
    browser.start(client_id)
    page = browser.login("dora")
    assert page.status_code == 200 and "Contactez votre conseiller" in page.text
    _expect_denied(bank, browser.return_link(), "authentication_failed")
    assert journey_rows(bank)[0]["outcome"] == "sca_unavailable"
    assert _codes(bank) == 0
