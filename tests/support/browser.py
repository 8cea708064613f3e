"""Debian's Chromium for Playwright (never `playwright install`: no browser downloads here).

`require_chromium()` skips a browser test module with a visible reason when Chromium is absent,
except under ``STETGATE_REQUIRE_BROWSER=1`` (CI), where that is an error. Launch it with
``playwright.chromium.launch(**chromium_launch_options())``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_launch_options() -> dict[str, Any]:
    """Debian's Chromium, headless. In the date-shifted run (libfaketime preloaded, monotonic
    clock left real for Python, see scripts/test.sh) Chromium gets a faked monotonic clock as
    well: with a real monotonic clock beside a shifted wall clock it never finishes loading a
    page under libfaketime 0.9.10. Its wall clock is shifted either way."""
    options: dict[str, Any] = {
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }
    if "faketime" in os.environ.get("LD_PRELOAD", ""):
        options["env"] = {**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "0"}
    return options


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("STETGATE_REQUIRE_BROWSER") == "1":
        raise RuntimeError("STETGATE_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
    pytest.skip(
        "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``) for a module's tests; call
    `require_chromium` first."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**chromium_launch_options())
        yield browser
        browser.close()
