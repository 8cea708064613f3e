"""A browser tab on the bank's PSU pages (Playwright driving Debian's Chromium,
`tests.support.browser`) with the TPP's callback answered locally, and the axe-core scan of
the pages against the WCAG 2.2 A/AA rules (EN 301 549 §9). Import it after
`require_chromium()`."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.bank import RunningBank
from tests.support.psu_flow import authorize_params

ORG = "PSDFR-ACPR-40020"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
"""axe-core's rules for WCAG 2.0, 2.1 and 2.2 levels A and AA: the web part of EN 301 549."""

_AXE = Axe()


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


class Tab:
    """One browser tab on the bank, with the TPP's callback answered locally. ``problems``
    collects script errors and CSP violations (the console reports both)."""

    def __init__(
        self,
        browser: Browser,
        bank: RunningBank,
        callback: TppCallback,
        *,
        locale: str = "fr-FR",
        viewport: dict[str, int] | None = None,
        bypass_csp: bool = False,
        java_script: bool = True,
    ) -> None:
        self.bank = bank
        self.callback = callback
        self.context: BrowserContext = browser.new_context(
            ignore_https_errors=True,
            locale=locale,
            viewport=viewport or DESKTOP,
            bypass_csp=bypass_csp,
            java_script_enabled=java_script,
        )
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def open_authorize(self, **overrides: str) -> None:
        params = authorize_params(ORG, **{"redirect_uri": self.callback.url, **overrides})
        self.page.goto(f"{self.bank.base_url}/stet/psd2/oauth/authorize?{urlencode(params)}")

    def shot(self, name: str, directory: str | None = None) -> None:
        target = directory or os.environ.get("STETGATE_SCREENSHOT_DIR")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)

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


def axe_violations(page: Page) -> list[str]:
    """The WCAG 2.2 A/AA violations axe-core finds on the page as it is, one line each (rule,
    impact, the first offending elements)."""
    results = _AXE.run(
        page,
        options={"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]},
    )
    found = []
    for violation in results.response["violations"]:
        targets = [str(node["target"]) for node in violation["nodes"][:3]]
        found.append(f"{violation['id']} ({violation['impact']}): {', '.join(targets)}")
    return found


REFLOW = {"width": 320, "height": 640}
"""WCAG 1.4.10 Reflow: 320 CSS px wide (1280 px at 400 %), no sideways scrolling."""
TARGET = 44
"""Touch targets of at least 44×44 CSS px (WCAG 2.5.5; EN 301 549 asks for 2.5.8's 24 px)."""

_SMALL_TARGETS = """(minimum) => Array.from(document.querySelectorAll(
    'input:not([type=hidden]):not([type=radio]), button, a.button, a.lang, .choice'))
  .filter((el) => el.offsetParent !== null && !el.closest('[hidden]'))
  .filter((el) => { const box = el.getBoundingClientRect();
                    return box.height < minimum || box.width < minimum; })
  .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' +
       Math.round(el.getBoundingClientRect().width) + 'x' +
       Math.round(el.getBoundingClientRect().height))"""


def small_targets(page: Page) -> list[str]:
    """Form controls, buttons and the language link smaller than `TARGET` either way."""
    found: list[str] = page.evaluate(_SMALL_TARGETS, TARGET)
    return found


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page scrolls sideways (0: it reflows, WCAG 1.4.10)."""
    width: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width
