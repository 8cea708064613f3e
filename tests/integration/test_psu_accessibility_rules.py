"""The server side of the PSU pages' accessibility features (EN 301 549 / WCAG 2.2), as a
script-less browser sees them: "extend the session" is a CSRF-protected PSU action that
restarts the idle timer (RTS (EU) 2018/389 Art. 4(3)(d)) and can never revive an ended or
expired journey; a timed-out journey shows the bank's page before the unchanged ``timeout``
callback; the first page speaks the browser's ``Accept-Language``; the identifier survives a
failed sign-in and the last attempt is announced. Real TLS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import (
    AUTHORIZE,
    PsuBrowser,
    add_budget_facile,
    authorize_params,
    callback_params,
    expired_return,
    journey_rows,
)

ORG = "PSDFR-ACPR-40031"
CONTINUE = "/psu/session/continue"


@pytest.fixture
def client_id(bank: RunningBank, pki: TestPki) -> str:
    add_budget_facile(bank, pki, ORG)
    return ORG


def _activity(bank: RunningBank) -> Any:
    (row,) = journey_rows(bank)
    return row["last_activity_at"]


@pytest.mark.postgres  # PostgreSQL smoke test of /psu/session/continue (the journey's update)
def test_extending_the_session_restarts_the_idle_timer(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    idle = bank.settings.psu_idle_timeout_seconds
    bank.clock.advance(idle - 10)
    answer = browser.submit(CONTINUE, {})
    assert answer.status_code == 303 and answer.headers["location"] == "/psu/login"
    assert _activity(bank) == bank.clock.now()
    bank.clock.advance(idle - 10)  # 2 × (idle − 10) since the page: alive thanks to "extend"
    assert browser.get("/psu/login").status_code == 200


def test_the_page_script_gets_the_seconds_left_as_json(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    bank.clock.advance(200)
    answer = browser.http.post(CONTINUE, data={"csrf_token": browser.csrf, "js": "1"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"seconds": bank.settings.psu_idle_timeout_seconds}
    assert _activity(bank) == bank.clock.now()


def test_extending_without_the_csrf_token_changes_nothing(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    before = _activity(bank)
    bank.clock.advance(100)
    assert browser.submit(CONTINUE, {}, with_csrf=False).status_code == 400
    assert browser.submit(CONTINUE, {}, csrf="forged").status_code == 400
    assert _activity(bank) == before


def test_extending_without_a_session_is_refused(bank: RunningBank) -> None:
    with bank.client() as http:
        answer = http.post(CONTINUE, data={"csrf_token": "x", "js": "1"})
    assert answer.status_code == 400 and "json" not in answer.headers["content-type"]


def test_extending_too_late_does_not_revive_the_journey(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    token = browser.csrf
    bank.clock.advance(bank.settings.psu_idle_timeout_seconds)
    late = browser.submit(CONTINUE, {"js": "1"}, csrf=token)
    query = callback_params(expired_return(late))
    assert (query["error"], query["error_description"]) == ("access_denied", "timeout")
    (row,) = journey_rows(bank)
    assert (row["stage"], row["outcome"]) == ("done", "timeout")
    again = browser.submit(CONTINUE, {"js": "1"}, csrf=token)
    assert 'id="session-expired"' in again.text  # still the bank's expired page, no JSON
    assert journey_rows(bank)[0]["last_activity_at"] == row["last_activity_at"]


def test_extending_cannot_pass_the_whole_journey_limit(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    whole = bank.settings.psu_journey_timeout_seconds
    idle = bank.settings.psu_idle_timeout_seconds
    for _ in range((whole - idle) // (idle - 30) + 1):
        bank.clock.advance(idle - 30)
        assert browser.submit(CONTINUE, {}).status_code == 303
        browser.get("/psu/login")
    answer = browser.http.post(CONTINUE, data={"csrf_token": browser.csrf, "js": "1"})
    assert answer.json()["seconds"] < idle  # the whole-journey limit is not extended


def test_the_expired_page_speaks_the_journeys_language_and_has_a_language_link(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id, ui_locales="en")
    bank.clock.advance(bank.settings.psu_idle_timeout_seconds + 1)
    page = browser.get("/psu/login")
    assert '<html lang="en">' in page.text and "Session expired" in page.text
    assert 'href="/psu/login?lang=fr"' in page.text
    french = browser.get("/psu/login", lang="fr")
    assert "Session expirée" in french.text and "Budget Facile" in french.text
    assert callback_params(expired_return(french))["error_description"] == "timeout"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("en-GB,en;q=0.9,fr;q=0.8", "en"),
        ("de-DE, en;q=0.5", "en"),
        ("fr-CA", "fr"),
        ("de, it", "fr"),  # none spoken: the bank's default
        ("en;q=0, fr;q=0.1", "fr"),  # q=0: not English
        ("", "fr"),
    ],
)
def test_the_first_page_speaks_the_browsers_language(
    bank: RunningBank, client_id: str, header: str, lang: str
) -> None:
    with bank.client(follow_redirects=False) as http:
        http.headers["Accept-Language"] = header
        started = http.get(AUTHORIZE, params=authorize_params(client_id))
        assert started.headers["location"] == "/psu/login"
        page = http.get("/psu/login")
    assert f'<html lang="{lang}">' in page.text


def test_ui_locales_and_the_psus_choice_win_over_the_browser(
    bank: RunningBank, client_id: str
) -> None:
    with bank.client(follow_redirects=False) as http:
        http.headers["Accept-Language"] = "en"
        http.get(AUTHORIZE, params=authorize_params(client_id, ui_locales="fr"))
        assert '<html lang="fr">' in http.get("/psu/login").text
        assert '<html lang="en">' in http.get("/psu/login", params={"lang": "en"}).text
        http.headers["Accept-Language"] = "fr"
        assert '<html lang="en">' in http.get("/psu/login").text  # kept in the journey


def test_a_failed_sign_in_keeps_the_identifier_and_warns_before_the_last_attempt(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    limit = bank.settings.max_failed_auth_attempts
    for attempt in range(1, limit):
        page = browser.login("alice", "wrong")
        assert page.status_code == 200
        assert 'value="alice"' in page.text
        assert ('id="last-attempt"' in page.text) == (attempt == limit - 1), attempt
    blocked = browser.login("alice", "wrong")
    assert 'id="blocked-message"' in blocked.text and 'id="help"' in blocked.text
