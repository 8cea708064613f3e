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

from stetgate.eidas import parse_certificate
from tests.support.bank import RunningBank
from tests.support.browser import require_chromium
from tests.support.pki import TestPki
from tests.support.psu_flow import PASSWORD, add_psu, directory, journey_rows
from tests.support.token_side import add_client

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("STETGATE_SCREENSHOT_DIR")

require_chromium()

from playwright.sync_api import Browser, Page  # noqa: E402

from tests.support.psu_tab import ORG, Tab, TppCallback  # noqa: E402


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


def _to_consent(tab: Tab) -> Page:
    """authorize → identification → one-time code → the consent page."""
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
    return page


def test_otp_journey_in_a_browser_ends_at_the_callback(tab: Tab) -> None:
    page = _to_consent(tab)
    assert page.inner_text("#consent-client") == "Budget Facile"
    tab.shot("4-consent")
    page.get_by_role("button", name="Autoriser").click()
    query = tab.callback_query()
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == "st-123" and query["iss"] == tab.bank.services.issuer


def test_the_consent_page_shows_the_certified_legal_name_and_organization_id(
    tab: Tab,
) -> None:
    """Look-alike client names (UTS #39): beside the name the TPP chose, the PSU reads the
    organizationName and organizationIdentifier of the TPP's eIDAS certificate."""
    qwac = parse_certificate(tab.bank.pki.issue(ORG, ("AISP", "CBPII")).qwac_pem.read_bytes())
    page = _to_consent(tab)
    tab.shot("4-consent-organization")
    assert page.inner_text("#consent-client") == "Budget Facile"
    assert page.inner_text("#consent-legal-name") == qwac.organization_name == f"TPP {ORG}"
    assert page.inner_text("#consent-org-id") == qwac.organization_identifier == ORG
    assert page.get_by_text("Raison sociale (certificat)").is_visible()
    assert page.get_by_text("Identifiant (certificat)").is_visible()
    card, value = (
        page.locator("section.card").bounding_box(),
        page.locator("#consent-org-id").bounding_box(),
    )
    assert card is not None and value is not None
    assert value["x"] + value["width"] <= card["x"] + card["width"]  # inside the card
    page.get_by_role("button", name="Refuser").click()
    assert tab.callback_query()["error"] == "access_denied"


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
        page.wait_for_selector(".error[role=alert]")
    assert "Access blocked" in page.inner_text("h1")
    tab.shot("7-blocked")
    page.click("#return-to-tpp")
    query = tab.callback_query()
    assert query["error_description"] == "authentication_failed"


def test_the_connected_apps_link_of_the_consent_page_comes_back_to_the_authorization(
    tab: Tab,
) -> None:
    page = _to_consent(tab)
    cookies = tab.context.cookies()
    page.get_by_role("link", name="Applications connectées").click()
    page.wait_for_selector("#apps-none")  # alice has no access yet
    assert page.url == f"{tab.bank.base_url}/psu/connected-apps"
    assert len(tab.context.pages) == 1 and tab.context.cookies() == cookies
    tab.shot("4-consent-connected-apps")
    page.get_by_role("link", name="Revenir à l'autorisation demandée par Budget Facile").click()
    page.wait_for_selector("#consent-form")
    page.get_by_role("button", name="Autoriser").click()
    assert set(tab.callback_query()) == {"code", "state", "iss"}


def test_a_reused_one_time_code_says_to_wait_for_the_next_one(tab: Tab) -> None:
    page = _to_consent(tab)
    page.get_by_role("button", name="Autoriser").click()
    tab.callback_query()
    used = directory(tab.bank).current_totp("alice", tab.bank.clock.now())
    assert used is not None
    tab.open_authorize()
    _login(tab)
    page.get_by_label("Code à usage unique").check()
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Code à 6 chiffres").fill(used)
    page.get_by_role("button", name="Valider le code").click()
    alert = page.wait_for_selector("#form-error")
    assert alert is not None
    assert alert.inner_text().startswith("Ce code a déjà été utilisé. Attendez")
    assert page.get_attribute("#otp", "aria-describedby") == "form-error"
    tab.shot("3-otp-reused")
    psu = directory(tab.bank).find("alice")
    assert psu is not None and psu.failed_attempts == 1  # counted like a wrong code


def test_the_invalid_request_page_switches_language_with_a_translated_detail(tab: Tab) -> None:
    tab.open_authorize(redirect_uri="https://elsewhere.example/cb")
    page = tab.page
    page.wait_for_selector("#technical-detail")
    assert "n'est pas enregistrée pour ce prestataire" in page.inner_text("#technical-detail")
    assert page.is_visible("#help")
    page.get_by_role("link", name="English").click()
    page.wait_for_selector("html[lang=en]")
    detail = page.inner_text("#technical-detail")
    assert "is not registered for this provider" in detail and "redirect_uri" in detail
    assert "Need help?" in page.inner_text("#help")
    page.get_by_role("link", name="Français").click()
    page.wait_for_selector("html[lang=fr]")
    assert "Demande d'autorisation invalide" in page.inner_text("h1")
    # The refusal page answers 400 by design, which the console reports; nothing else may.
    tab.problems[:] = [p for p in tab.problems if "status of 400 (Bad Request)" not in p]


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


# --- WCAG 2.2.1 timing adjustable: the idle warning and its "continue" -----------------------
def _last_activity(tab: Tab) -> Any:
    (row,) = [r for r in journey_rows(tab.bank) if r["outcome"] is None]
    return row["last_activity_at"]


def test_the_idle_warning_appears_a_minute_before_and_continue_restarts_the_server_timer(
    tab: Tab,
) -> None:
    """The warning shows before the idle limit (60 s, or half a limit shorter than 2 minutes:
    15 s here; the page's clock is driven); "continue"
    is a PSU action on the server (the journey's idle deadline moves), the countdown starts
    again, and what the PSU typed is still there."""
    page = tab.page
    page.clock.install()
    tab.open_authorize()
    page.wait_for_selector("#psu_id")
    page.fill("#psu_id", "alice")
    assert page.is_hidden("#session-warning")
    page.clock.fast_forward(19_000)  # idle limit 30 s, warning 15 s before: 11 s left
    page.wait_for_selector("#session-warning:not([hidden])")
    before = _last_activity(tab)
    tab.bank.clock.advance(19)
    page.click("#session-warning-continue")
    page.wait_for_selector("#session-warning", state="hidden")
    assert page.input_value("#psu_id") == "alice"
    assert _last_activity(tab) > before
    assert page.inner_text("#session-timer-value") == "0:30"
    tab.bank.clock.advance(25)  # 44 s after the page loaded, 25 s after "continue"
    page.goto(f"{tab.bank.base_url}/psu/login")
    assert page.is_visible("#login-form")  # not expired: the continue counted as activity


def test_without_javascript_continue_is_a_form_and_the_page_says_the_minutes_left(
    chromium: Browser, bank_factory: Any, pki: TestPki, tpp_callback: TppCallback
) -> None:
    bank: RunningBank = bank_factory(psu_idle_timeout_seconds=120)
    add_client(
        bank.services.engine,
        pki.issue(ORG, ("AISP",)),
        bank.clock.now(),
        name="Budget Facile",
        redirect_uris=(tpp_callback.url,),
    )
    opened = Tab(chromium, bank, tpp_callback, java_script=False)
    try:
        opened.open_authorize()
        page = opened.page
        page.wait_for_selector("#psu_id")
        assert "2\u00a0min" in page.inner_text("#session-timer")
        assert page.is_hidden("#session-timer-live")
        before = _last_activity(opened)
        bank.clock.advance(100)
        page.click("#session-continue button")
        page.wait_for_selector("#login-form")
        assert page.url == f"{bank.base_url}/psu/login"  # 303 back to the screen
        assert _last_activity(opened) > before
        bank.clock.advance(121)  # past the idle limit: the next load is the bank's page
        page.reload()
        page.wait_for_selector("#session-expired")
        assert "Budget Facile" in page.inner_text("#return-to-tpp")
    finally:
        opened.close()


# --- keyboard only -----------------------------------------------------------------------------
def _tab_to(page: Any, selector: str, most: int) -> int:
    """Press Tab until `selector` has the focus (at most `most` presses); each stop shows a
    focus indicator (WCAG 2.4.7)."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "() => { const el = document.activeElement;"
            " return el === document.body ? 'body' : getComputedStyle(el).outlineStyle; }"
        )
        assert outline != "none", f"no focus indicator after {presses} Tab(s)"
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} not reached in {most} Tab presses")


def test_the_whole_journey_works_with_the_keyboard_only(tab: Tab) -> None:
    """Identification → method → code → consent → back to the TPP without a pointer: the
    first field and the code field have the focus on arrival, every control is reached with
    Tab and shows where the focus is, Enter and the arrow keys do the rest."""
    page = tab.page
    tab.open_authorize()
    page.wait_for_selector("#psu_id")
    assert page.evaluate("() => document.activeElement.id") == "psu_id"
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-error")
    assert page.input_value("#psu_id") == "alice"  # kept after the error
    assert page.evaluate("() => document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#method-form")
    _tab_to(page, "#method-totp", 4)
    page.keyboard.press("ArrowDown")
    assert page.is_checked("#method-app")
    page.keyboard.press("ArrowUp")
    assert page.is_checked("#method-totp")
    page.keyboard.press("Enter")
    page.wait_for_selector("#otp")
    assert page.evaluate("() => document.activeElement.id") == "otp"  # no Tab needed
    code = directory(tab.bank).current_totp("alice", tab.bank.clock.now())
    assert code is not None
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_selector("#consent-form")
    _tab_to(page, "#consent-form button[value=authorize]", 8)
    page.keyboard.press("Enter")
    query = tab.callback_query()
    assert set(query) == {"code", "state", "iss"}


def test_the_skip_link_is_the_first_stop_and_becomes_visible(tab: Tab) -> None:
    page = tab.page
    page.goto(f"{tab.bank.base_url}/psu/login")  # no journey: a page without autofocus
    page.wait_for_selector("#message")
    assert tab.problems == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]  # the page's own status, expected here
    tab.problems.clear()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    box = page.eval_on_selector(".skip", "el => el.getBoundingClientRect().left")
    assert box >= 0  # on screen while focused
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
