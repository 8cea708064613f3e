"""Debian's Chromium for Playwright (never `playwright install`: no browser downloads here).

`require_chromium()` skips a browser test module with a visible reason when Chromium is absent,
except under ``STETGATE_REQUIRE_BROWSER=1`` (CI), where that is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("STETGATE_REQUIRE_BROWSER") == "1":
        raise RuntimeError("STETGATE_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
    pytest.skip(
        "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
