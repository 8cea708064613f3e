"""The PSU pages in a real browser (Debian's Chromium through Playwright): the whole journey
with the one-time code, the decoupled method with the page's status poll, and the session
timer that sends the PSU back to the TPP when time runs out — with the bank's CSP in force
(any violation fails the test). Set ``STETGATE_SCREENSHOT_DIR`` to keep a screenshot of each
page."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from stetgate.eidas import parse_certificate
from tests.support.bank import RunningBank
from tests.support.browser import launched_chromium, require_chromium
from tests.support.pki import TestPki
from tests.support.psu_flow import PASSWORD, add_psu, authorize_params, directory
from tests.support.token_side import add_client

pytestmark = pytest.mark.browser

ORG = "PSDFR-ACPR-40020"
SHOTS = os.environ.get("STETGATE_SCREENSHOT_DIR")

require_chromium()

from playwright.sync_api import Browser, Page  # noqa: E402


class TppCallback:
    """The TPP's callback endpoint: a local HTTP server that records what the browser brings
    back (the bank's 303 is followed by the browser itself, as in real life)."""

    def __init__(self) -> None:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/callback"):
                    seen.append(self.path)
                body = b"<!doctype html><title>TPP</title><h1 id='tpp'>TPP callback</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.seen = seen
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def tpp_callback() -> Iterator[TppCallback]:
    server = TppCallback()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


class Tab:
    """One browser tab on the bank, with the TPP's callback answered locally."""

    def __init__(self, browser: Browser, bank: RunningBank, callback: TppCallback) -> None:
        self.bank = bank
        self.callback = callback
        self.context = browser.new_context(ignore_https_errors=True, locale="fr-FR")
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def open_authorize(self, **overrides: str) -> None:
        params = authorize_params(ORG, redirect_uri=self.callback.url, **overrides)
        self.page.goto(f"{self.bank.base_url}/stet/psd2/oauth/authorize?{urlencode(params)}")

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)

    def callback_query(self, timeout_ms: int = 10_000) -> dict[str, str]:
        self.page.wait_for_selector("#tpp", timeout=timeout_ms)
        assert self.page.url.startswith(self.callback.url + "?"), self.page.url
        assert (
            self.callback.seen[-1]
            == urlsplit(self.page.url).path + "?" + urlsplit(self.page.url).query
        )
        return dict(parse_qsl(urlsplit(self.page.url).query))

    def close(self) -> None:
        self.context.close()


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


def test_the_page_timer_sends_the_psu_back_with_timeout(tab: Tab) -> None:
    tab.open_authorize()
    tab.page.wait_for_selector("#psu_id")
    for _ in range(2):  # activity within the 30 s idle limit, up to 2 s before the 60 s limit
        tab.bank.clock.advance(29)
        tab.page.reload()
    assert tab.page.get_attribute("#session-timer", "data-seconds") == "2"
    started = time.monotonic()
    query = tab.callback_query()
    assert time.monotonic() - started < 6
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
