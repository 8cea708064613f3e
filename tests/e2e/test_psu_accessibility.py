"""Accessibility of the PSU pages (European Accessibility Act; EN 301 549 §9 = WCAG 2.1 AA,
checked here against WCAG 2.2 A/AA): every page and state — identification and its error,
SCA choice, one-time code and its errors (wrong, reused), the banking-app wait, consent and
the connected apps shown from it, blocked, session expired, connected apps (with an app, after
a withdrawal, empty), the demo phone, the error pages (and the invalid-request page's own
address) — in French and English, on a 1280×800 desktop and a 390×844 phone, scanned with
axe-core (zero violations) and checked for sideways scrolling.

axe is injected with Playwright's ``evaluate``; the scanning context sets ``bypass_csp`` so
the injected script runs under the pages' ``script-src 'self'`` (the pages' own CSP is
checked, with violations failing, by test_psu_browser.py).

With ``STETGATE_WRITE_SCREENS=1`` the French run also writes a phone screenshot of the main
states into docs/screens/ (committed, shown in the README and docs/psu-pages.md; CI leaves
the tree alone). They are reduced to a 64-colour palette to stay small.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stetgate.demo.totp import seconds_left_in_step
from tests.support.bank import RunningBank
from tests.support.browser import require_chromium
from tests.support.pki import TestPki
from tests.support.psu_flow import PASSWORD, add_psu, directory
from tests.support.token_side import CALLBACK, add_client, obtain_pair

pytestmark = pytest.mark.browser

require_chromium()

from playwright.sync_api import Browser, Page  # noqa: E402

from tests.support.psu_tab import (  # noqa: E402
    DESKTOP,
    ORG,
    REFLOW,
    VIEWPORTS,
    Tab,
    TppCallback,
    axe_violations,
    horizontal_overflow,
    small_targets,
)

LOCALES = {"fr": "fr-FR,fr;q=0.9", "en": "en-GB,en;q=0.9"}
SCREENS = Path(__file__).parents[2] / "docs" / "screens"
WRITE_SCREENS = os.environ.get("STETGATE_WRITE_SCREENS") == "1"
SCREEN_STATES = (
    "login",
    "login-error",
    "method",
    "otp",
    "otp-reused",
    "app-wait",
    "consent",
    "connected-apps-from-consent",
    "blocked",
    "idle-warning",
    "expired",
    "connected-apps",
    "connected-apps-confirm",
    "bad-request",
)


def _write_screen(page: Page, state: str) -> None:
    """The phone view of `state`, as a small palette PNG in docs/screens/."""
    from PIL import Image

    shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    SCREENS.mkdir(parents=True, exist_ok=True)
    shot.convert("RGB").quantize(colors=64).save(SCREENS / f"{state}.png", optimize=True)


class Scanner:
    """Scans the tab's current page at both viewports; collects what is wrong per state."""

    def __init__(self, tab: Tab, lang: str) -> None:
        self.tab = tab
        self.lang = lang
        self.found: dict[str, list[str]] = {}
        self.states: list[str] = []

    def __call__(self, state: str) -> None:
        page = self.tab.page
        page.wait_for_load_state("load")
        assert page.get_attribute("html", "lang") == self.lang, state
        for name, size in VIEWPORTS.items():
            page.set_viewport_size(size)
            problems = axe_violations(page)
            overflow = horizontal_overflow(page)
            if overflow > 0:
                problems.append(f"scrolls sideways by {overflow}px")
            if name == "phone":
                problems += [f"target under 44px: {t}" for t in small_targets(page)]
                if WRITE_SCREENS and self.lang == "fr" and state in SCREEN_STATES:
                    _write_screen(page, state)
            if problems:
                self.found[f"{state}/{name}"] = problems
        page.set_viewport_size(REFLOW)
        overflow = horizontal_overflow(page)
        if overflow > 0:
            self.found[f"{state}/320px"] = [f"scrolls sideways by {overflow}px"]
        page.set_viewport_size(DESKTOP)
        self.states.append(state)


def _bank(bank_factory: Callable[..., RunningBank], pki: TestPki, callback: TppCallback) -> Any:
    """A demo bank with Budget Facile registered, alice enrolled, and one access of Budget
    Facile to alice's accounts (for the connected-apps page)."""
    bank: RunningBank = bank_factory(enable_demo_pages=True)
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    client = add_client(
        bank.services.engine,
        tpp,
        bank.clock.now(),
        name="Budget Facile",
        redirect_uris=(callback.url, CALLBACK),
    )
    add_psu(bank, "alice")
    obtain_pair(bank, tpp, client, psu_id="alice")
    return bank


def _sign_in(tab: Tab, scan: Scanner | None, *, password: str = PASSWORD) -> None:
    page = tab.page
    page.wait_for_selector("#psu_id")
    page.fill("#psu_id", "alice")
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


def _otp(tab: Tab, code: str) -> None:
    tab.page.fill("#otp", code)
    tab.page.click("#otp-form button[type=submit]")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_psu_page_and_state_has_no_wcag_violation(
    lang: str,
    chromium: Browser,
    bank_factory: Callable[..., RunningBank],
    pki: TestPki,
    tpp_callback: TppCallback,
) -> None:
    bank = _bank(bank_factory, pki, tpp_callback)
    tab = Tab(chromium, bank, tpp_callback, locale=LOCALES[lang].split(",")[0], bypass_csp=True)
    tab.context.set_extra_http_headers({"Accept-Language": LOCALES[lang]})
    scan = Scanner(tab, lang)
    page = tab.page
    try:
        page.goto(f"{bank.base_url}/psu/login")
        scan("no-session")
        tab.open_authorize(redirect_uri="https://elsewhere.example/cb")
        scan("bad-request")
        page.goto(f"{bank.base_url}/psu/invalid-request?reason=client_id.unknown_client")
        scan("invalid-request-link")

        tab.open_authorize()
        page.wait_for_selector("#psu_id")
        scan("login")
        _sign_in(tab, scan, password="wrong")
        page.wait_for_selector("#form-error")
        scan("login-error")
        page.eval_on_selector(
            "#login-form input[name=csrf_token]", "input => { input.value = 'forged'; }"
        )
        _sign_in(tab, scan)
        page.wait_for_selector("#message")
        scan("bad-form")
        page.goto(f"{bank.base_url}/psu/login")
        _sign_in(tab, scan)
        page.wait_for_selector("#method-form")
        scan("method")
        page.check("#method-totp")
        page.click("#method-form button[type=submit]")
        page.wait_for_selector("#otp")
        scan("otp")
        _otp(tab, "000000")
        page.wait_for_selector("#form-error")
        scan("otp-error")
        code = directory(bank).current_totp("alice", bank.clock.now())
        assert code is not None
        _otp(tab, code)
        page.wait_for_selector("#consent-form")
        scan("consent")
        page.click("#consent-apps-link")
        page.wait_for_selector("#apps-back-to-consent")
        scan("connected-apps-from-consent")
        page.click("#apps-back-to-consent")
        page.wait_for_selector("#consent-form")
        page.click("#consent-form button[value=authorize]")
        assert "code" in tab.callback_query()

        # The next time step: a fresh one-time code, and the used one still in the window.
        bank.clock.advance(seconds_left_in_step(bank.clock.now()))
        page.goto(f"{bank.base_url}/psu/connected-apps")
        _sign_in(tab, scan)
        page.check("#method-totp")
        page.click("#method-form button[type=submit]")
        page.wait_for_selector("#otp")
        _otp(tab, code)  # the code of the step before, already used
        page.wait_for_selector("#form-error")
        scan("otp-reused")
        _otp(tab, directory(bank).current_totp("alice", bank.clock.now()) or "")
        page.wait_for_selector("#apps-list")
        scan("connected-apps")
        page.click("#apps-list button[type=submit]")
        page.wait_for_selector("#apps-confirm")
        scan("connected-apps-confirm")
        page.click("#apps-confirm-form button[value=yes]")
        page.wait_for_selector("#apps-notice")
        assert "/psu/connected-apps?withdrawn=" in page.url  # not left on the POST
        scan("connected-apps-withdrawn")
        page.wait_for_selector("#apps-none")

        tab.open_authorize(scope="cbpii")
        _sign_in(tab, scan)
        page.check("#method-app")
        page.click("#method-form button[type=submit]")
        page.wait_for_selector("#challenge-reference")
        scan("app-wait")
        phone = tab.page = tab.context.new_page()
        phone.goto(f"{bank.base_url}/demo/phone")
        scan("demo-phone")
        phone.fill("#psu_id", "alice")
        phone.click("#phone-lookup button[type=submit]")
        phone.wait_for_selector("#pending-challenges")
        scan("demo-phone-pending")
        phone.close()
        tab.page = page

        tab.open_authorize()
        for _ in range(5):
            _sign_in(tab, scan, password="wrong")
            page.wait_for_selector(".error[role=alert]")
        page.wait_for_selector("#blocked-message")
        scan("blocked")

        page.clock.install()  # the page's clock: jump to a minute before the idle limit
        tab.open_authorize()
        page.wait_for_selector("#psu_id")
        page.clock.fast_forward((bank.settings.psu_idle_timeout_seconds - 50) * 1000)
        page.wait_for_selector("#session-warning:not([hidden])")
        scan("idle-warning")
        bank.clock.advance(bank.settings.psu_idle_timeout_seconds + 1)
        page.reload()
        page.wait_for_selector("#session-expired")
        scan("expired")
    finally:
        tab.close()
    assert len(scan.states) == 21
    assert scan.found == {}, "\n".join(f"{k}: {v}" for k, v in scan.found.items())
