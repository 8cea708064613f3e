"""What a sandbox PSU does on the bank's pages in a real browser (Playwright): identification
with the demo credentials of ``demo-psus.json``, the one-time-code method when the bank offers
a choice, and the code its authenticator would show now — up to the consent screen. Shared by
the browser tests that walk the sandbox (test_sandbox.py, test_tpp_journey.py); form fields are
the documented ones (docs/authorization-flow.md), so the steps are what a TPP's own automated
test does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stetgate.demo.totp import decode_totp_secret, totp_at

if TYPE_CHECKING:
    from playwright.sync_api import Page


def sign_in_to_consent(page: Page, psu: Mapping[str, Any]) -> None:
    """From the bank's identification page to its consent screen, as ``psu`` (``id``,
    ``password``, ``totp_secret``)."""
    page.wait_for_selector("[name=psu_id]")
    page.fill("[name=psu_id]", psu["id"])
    page.fill("[name=password]", psu["password"])
    page.click("button[type=submit]")
    if page.locator("input[name=method]").count():
        page.check("input[name=method][value=totp]")
        page.click("button[type=submit]")
    page.wait_for_selector("[name=otp]")
    page.fill("[name=otp]", totp_at(decode_totp_secret(psu["totp_secret"]), datetime.now(UTC)))
    page.click("button[type=submit]")
    page.wait_for_selector("button[value=authorize]")
