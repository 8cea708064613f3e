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
    from tests.support.browser import launched_chromium

    with launched_chromium() as browser:
        yield browser
