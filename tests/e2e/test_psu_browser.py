"""The PSU pages in a real browser (Debian's Chromium through Playwright): the whole journey
with the one-time code, the decoupled method with the page's status poll, and the session
timer that sends the PSU back to the TPP when time runs out — with the bank's CSP in force
(any violation fails the test). Set ``STETGATE_SCREENSHOT_DIR`` to keep a screenshot of each
page."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bank import RunningBank
from tests.support.browser import chromium_launch_options, require_chromium
from tests.support.pki import TestPki
from tests.support.psu_flow import PASSWORD, add_psu, directory
from tests.support.token_side import add_client

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("STETGATE_SCREENSHOT_DIR")

require_chromium()

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from tests.support.psu_tab import ORG, Tab, TppCallback  # noqa: E402


@pytest.fixture(scope="module")
def tpp_callback() -> Iterator[TppCallback]:
    server = TppCallback()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**chromium_launch_options())
        yield browser
        browser.close()


@pytest.fixture
def tab(
    chromium: Browser, bank_factory: Any, pki: TestPki, tpp_callback: TppCallback
) -> Iterator[Tab]:
    bank: RunningBank = bank_factory(
        enable_demo_pages=True, psu_idle_timeout_seconds=30, psu_journey_timeout_seconds=60
    )
    add_client(
        bank.services.engine,
        pki.issue(ORG, ("AISP", "CBPII")),
        bank.clock.now(),
        name="Budget Facile",
        redirect_uris=(tpp_callback.url,),
    )
    add_psu(bank, "alice")
    opened = Tab(chromium, bank, tpp_callback)
    yield opened
    opened.close()
    assert opened.problems == [], opened.problems  # no CSP violation, no script error


def _login(tab: Tab) -> None:
    page = tab.page
    page.wait_for_selector("#psu_id")
    tab.shot("1-identification")
    page.get_by_label("Identifiant client").fill("alice")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Valider").click()
    page.wait_for_selector("#method-form")
    tab.shot("2-method")


def test_otp_journey_in_a_browser_ends_at_the_callback(tab: Tab) -> None:
    tab.open_authorize()
    _login(tab)
    page = tab.page
    page.get_by_label("Code à usage unique").check()
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_selector("#otp")
    tab.shot("3-otp")
    code = directory(tab.bank).current_totp("alice", tab.bank.clock.now())
    assert code is not None
    page.get_by_label("Code à 6 chiffres").fill(code)
    page.get_by_role("button", name="Valider le code").click()
    page.wait_for_selector("#consent-form")
    assert page.inner_text("#consent-client") == "Budget Facile"
    tab.shot("4-consent")
    page.get_by_role("button", name="Autoriser").click()
    query = tab.callback_query()
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == "st-123" and query["iss"] == tab.bank.services.issuer


def test_the_page_timer_shows_the_expired_page_then_the_psu_goes_back_with_timeout(
    tab: Tab,
) -> None:
    tab.open_authorize()
    tab.page.wait_for_selector("#psu_id")
    for _ in range(2):  # activity within the 30 s idle limit, up to 2 s before the 60 s limit
        tab.bank.clock.advance(29)
        tab.page.reload()
    assert tab.page.get_attribute("#session-timer", "data-seconds") == "2"
    started = time.monotonic()
    tab.page.wait_for_selector("#session-expired", timeout=10_000)  # the bank's page first
    assert time.monotonic() - started < 6
    assert tab.callback.seen == [] or "timeout" not in tab.callback.seen[-1]
    assert "Budget Facile" in tab.page.inner_text("#message")
    tab.page.click("#return-to-tpp")
    query = tab.callback_query()
    assert query == {
        "error": "access_denied",
        "error_description": "timeout",
        "state": "st-123",
        "iss": tab.bank.services.issuer,
    }


def test_decoupled_confirmation_is_picked_up_by_the_page_poll(tab: Tab, chromium: Browser) -> None:
    tab.open_authorize(scope="cbpii")
    _login(tab)
    page = tab.page
    page.get_by_label("Confirmation dans l'application bancaire").check()
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_selector("#challenge-reference")
    tab.shot("5-app-wait")
    reference = page.inner_text("#challenge-reference")
    phone = tab.context.new_page()
    phone.goto(f"{tab.bank.base_url}/demo/phone")
    phone.get_by_label("Identifiant client").fill("alice")
    phone.get_by_role("button", name="Afficher le téléphone").click()
    phone.wait_for_selector("#pending-challenges")
    if SHOTS:
        phone.screenshot(path=str(Path(SHOTS) / "6-demo-phone.png"), full_page=True)
    phone.get_by_role("button", name=f"Confirmer {reference}").click()
    phone.wait_for_selector("#phone-notice")
    page.wait_for_selector("#consent-form", timeout=8_000)  # the poll submitted the form
    assert "CBPII" in page.inner_text("#consent-role")
    page.get_by_role("button", name="Refuser").click()
    query = tab.callback_query()
    assert (query["error"], query["error_description"]) == ("access_denied", "consent_refused")


def test_blocked_page_and_english_pages(tab: Tab) -> None:
    tab.open_authorize()
    page = tab.page
    page.wait_for_selector("#psu_id")
    page.get_by_role("link", name="English").click()
    page.wait_for_selector("html[lang=en]")
    for _ in range(5):
        page.get_by_label("Customer ID").fill("alice")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("[role=alert]")
    assert "Access blocked" in page.inner_text("h1")
    tab.shot("7-blocked")
    page.click("#return-to-tpp")
    query = tab.callback_query()
    assert query["error_description"] == "authentication_failed"


THEME_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" viewBox="0 0 40 20">'
    b'<rect width="40" height="20" fill="#005a3c"/></svg>'
)


def test_a_theme_folder_changes_the_logo_a_colour_and_a_text(
    chromium: Browser,
    bank_factory: Any,
    pki: TestPki,
    tpp_callback: TppCallback,
    tmp_path: Path,
) -> None:
    """The bank's look from its theme folder, as the browser shows it under the pages' CSP:
    the logo loads from the static path, the generated stylesheet recolours the header, a
    text is the theme's."""
    theme = tmp_path / "theme"
    (theme / "texts").mkdir(parents=True)
    (theme / "theme.toml").write_text('name = "Banque Exemple"\n[colors]\nprimary = "#005a3c"\n')
    (theme / "logo.svg").write_bytes(THEME_LOGO)
    (theme / "texts" / "fr.toml").write_text('login_title = "Bienvenue chez Exemple"\n')
    bank: RunningBank = bank_factory(theme_dir=theme)
    add_client(
        bank.services.engine,
        pki.issue(ORG, ("AISP", "CBPII")),
        bank.clock.now(),
        name="Budget Facile",
        redirect_uris=(tpp_callback.url,),
    )
    opened = Tab(chromium, bank, tpp_callback)
    try:
        opened.open_authorize()
        page = opened.page
        page.wait_for_selector("#psu_id")
        opened.shot("8-theme")
        assert page.inner_text("h1") == "Bienvenue chez Exemple"
        assert page.title() == "Bienvenue chez Exemple — Banque Exemple"
        logo_width = page.eval_on_selector("#bank-logo", "img => img.complete && img.naturalWidth")
        assert logo_width == 40  # loaded, not a broken image
        header = page.eval_on_selector(".bank-header", "el => getComputedStyle(el).backgroundColor")
        assert header == "rgb(0, 90, 60)"
    finally:
        opened.close()
    assert opened.problems == [], opened.problems  # no CSP violation
