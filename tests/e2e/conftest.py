"""Fixtures of the browser tests: one Chromium per module (Debian's, `tests.support.browser`)
and the TPP's callback server. Playwright is imported inside them, so a module that skips for
want of Chromium (`require_chromium()`) never needs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def tpp_callback() -> Iterator[Any]:
    from tests.support.psu_tab import TppCallback

    server = TppCallback()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.support.browser import chromium_launch_options

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**chromium_launch_options())
        yield browser
        browser.close()
