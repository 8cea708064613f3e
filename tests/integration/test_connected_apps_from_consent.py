"""The consent page's "Connected apps" link
(docs/decisions.md#connected-apps-from-the-consent-page): same tab, the list shown inside the
authorization journey the PSU has passed SCA in — no second sign-in, no new cookie, the same
CSRF token and time limits — and a link back to the consent page, where the authorization goes
on. Before SCA, after the end, or with a forged form, nothing of that: the journey and the
grants stay as they were. Real TLS."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stetgate.store.audit_events import GRANT_REVOKED_BY_PSU
from stetgate.store.schema import grants
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import (
    PsuBrowser,
    add_psu,
    callback_params,
    callback_query,
    expired_return,
    journey_rows,
)
from tests.support.token_side import add_client, audit_trail, database_state, obtain_pair

ORG = "PSDFR-ACPR-40033"
APPS = "/psu/connected-apps"
REVOKE = "/psu/connected-apps/revoke"


@pytest.fixture
def client_id(bank: RunningBank, pki: TestPki) -> str:
    """Budget Facile, already holding one access to alice's accounts."""
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    client = add_client(bank.services.engine, tpp, bank.clock.now(), name="Budget Facile")
    add_psu(bank, "alice")
    obtain_pair(bank, tpp, client, psu_id="alice")
    return ORG


def _active_grants(bank: RunningBank) -> list[Any]:
    with bank.services.engine.connect() as conn:
        return conn.execute(select(grants).where(grants.c.revoked_at.is_(None))).all()


def _at_consent(bank: RunningBank, client_id: str, browser: PsuBrowser) -> httpx.Response:
    """``browser`` at the consent page of a new authorization."""
    answer = browser.sign_in_with_totp(client_id)
    assert answer.headers["location"] == "/psu/consent"
    return browser.follow(answer)


def _outcomes(bank: RunningBank) -> list[str]:
    return sorted(str(row["outcome"]) for row in journey_rows(bank))


def _live(bank: RunningBank) -> list[dict[str, Any]]:
    return [row for row in journey_rows(bank) if row["outcome"] is None]


def test_the_consent_page_links_to_connected_apps_in_the_same_tab(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    consent = _at_consent(bank, client_id, browser)
    link = re.search(
        r'<a href="/psu/connected-apps" id="consent-apps-link">([^<]+)</a>', consent.text
    )
    assert link is not None and link.group(1) == "Applications connectées"
    assert "target=" not in consent.text


def test_the_list_is_shown_inside_the_authorization_and_leads_back_to_consent(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    _at_consent(bank, client_id, browser)
    (journey,) = _live(bank)
    cookie, csrf = dict(browser.http.cookies), browser.csrf
    listed = browser.get(APPS)
    assert listed.status_code == 200 and "set-cookie" not in listed.headers
    assert 'id="apps-list"' in listed.text and "Budget Facile" in listed.text
    assert 'action="/psu/sign-out"' not in listed.text
    assert '<a class="button primary" id="apps-back-to-consent" href="/psu/consent">' in listed.text
    assert "Revenir à l'autorisation demandée par Budget Facile" in listed.text.replace(
        "&#39;", "'"
    )
    assert 'hreflang="en"' in listed.text and f'href="{APPS}?lang=en"' in listed.text
    assert browser.csrf == csrf and dict(browser.http.cookies) == cookie
    (still,) = _live(bank)
    assert (still["id_hash"], still["stage"]) == (journey["id_hash"], "consent")
    assert len(journey_rows(bank)) == 1  # no journey started
    back = browser.get("/psu/consent")
    assert back.status_code == 200 and 'id="consent-form"' in back.text
    assert "code" in callback_query(browser.consent("authorize"))


def test_the_list_in_english_stays_inside_the_authorization(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    _at_consent(bank, client_id, browser)
    listed = browser.get(APPS, lang="en")
    assert (
        '<html lang="en">' in listed.text
        and "Back to the authorization requested by" in listed.text
    )
    assert '<html lang="en">' in browser.get("/psu/consent").text


def test_a_withdrawal_from_inside_the_authorization_keeps_the_journey(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    _at_consent(bank, client_id, browser)
    (grant,) = _active_grants(bank)
    browser.get(APPS)
    asked = browser.submit(REVOKE, {"grant_id": grant.id})
    assert asked.status_code == 200 and 'id="apps-confirm"' in asked.text
    done = browser.submit(REVOKE, {"grant_id": grant.id, "confirm": "yes"})
    assert done.headers["location"] == f"{APPS}?withdrawn={grant.id}"
    listed = browser.follow(done)
    assert 'id="apps-notice"' in listed.text and 'id="apps-none"' in listed.text
    (event,) = audit_trail(bank.services.engine, GRANT_REVOKED_BY_PSU)
    assert (event["psu_id"], event["client_id"]) == ("alice", ORG)
    assert _active_grants(bank) == []
    browser.get("/psu/consent")
    assert "code" in callback_query(browser.consent("authorize"))


def test_a_forged_withdrawal_inside_the_authorization_changes_nothing(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    _at_consent(bank, client_id, browser)
    (grant,) = _active_grants(bank)
    browser.get(APPS)
    before = database_state(bank.services.engine)
    forged = browser.submit(REVOKE, {"grant_id": grant.id, "confirm": "yes"}, csrf="forged")
    assert forged.status_code == 400
    assert database_state(bank.services.engine) == before


@pytest.mark.parametrize("stage", ["identify", "sca"])
def test_before_sca_the_link_target_starts_its_own_sign_in(
    bank: RunningBank, client_id: str, browser: PsuBrowser, stage: str
) -> None:
    """Not reachable from the pages (only the consent page has the link): typed by hand, the
    address replaces the unauthenticated journey with a sign-in, as it always did."""
    browser.start(client_id)
    if stage == "sca":
        browser.follow(browser.login())
        browser.follow(browser.choose("totp"))
    started = browser.http.get(APPS)
    assert started.status_code == 303 and started.headers["location"] == "/psu/login"
    assert "set-cookie" in started.headers
    assert _outcomes(bank) == ["None", "superseded"]
    assert len(_active_grants(bank)) == 1


def test_an_idle_authorization_times_out_with_the_timeout_callback_not_a_sign_in(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    _at_consent(bank, client_id, browser)
    bank.clock.advance(bank.settings.psu_idle_timeout_seconds + 1)
    page = browser.get(APPS)
    assert 'id="session-expired"' in page.text and "set-cookie" not in page.headers
    assert callback_params(expired_return(page))["error_description"] == "timeout"
    assert _outcomes(bank) == ["timeout"]


def test_after_the_authorization_the_address_starts_a_sign_in(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    _at_consent(bank, client_id, browser)
    callback_query(browser.consent("authorize"))
    started = browser.http.get(APPS)
    assert started.status_code == 303 and started.headers["location"] == "/psu/login"
