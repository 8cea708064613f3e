"""The demo TPP's callback does not drop a callback it did not start: it says how to
finish it from the terminal, and keeps the browser session's own pending authorization."""

from __future__ import annotations

import asyncio

import httpx

from stetgate.tpp.client import TppCredentials
from stetgate.tpp.demo_app import DemoTppConfig, create_demo_tpp_app
from tests.support.pki import TestPki

PUBLIC = "https://localhost:8444"


def _app(pki: TestPki) -> httpx.AsyncClient:
    config = DemoTppConfig(
        bank_url="https://bank.test",
        client_id="PSDFR-ACPR-12345",
        credentials=TppCredentials.from_directory(pki.issue().directory),
        public_url=PUBLIC,
        ca_file=pki.ca_pem,
    )
    transport = httpx.ASGITransport(app=create_demo_tpp_app(config))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC)


def test_a_callback_started_elsewhere_shows_the_exchange_command(pki: TestPki) -> None:
    async def run() -> httpx.Response:
        async with _app(pki) as app:
            return await app.get("/callback?code=C1&state=from-cli")

    page = asyncio.run(run())
    assert page.status_code == 200
    assert "stetgate tpp exchange" in page.text
    assert "state=from-cli" in page.text and "code=C1" in page.text
    assert "60 s" in page.text


def test_a_callback_with_another_state_keeps_the_session_s_pending_authorization(
    pki: TestPki,
) -> None:
    async def run() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with _app(pki) as app:
            started = await app.get("/connect")
            stray = await app.get("/callback?code=C1&state=not-this-one")
            # the session still waits for its own callback: its refusal is reported as such
            own_state = started.headers["location"].split("state=")[1].split("&")[0]
            refused = await app.get(
                f"/callback?error=access_denied&error_description=cancelled&state={own_state}"
                "&iss=https://bank.test",
                follow_redirects=True,
            )
            return started, stray, refused

    started, stray, refused = asyncio.run(run())
    assert started.status_code == 303
    assert started.headers["location"].startswith("https://bank.test/")
    assert "stetgate tpp exchange" in stray.text
    assert "cancelled" in refused.text
    assert "stetgate tpp exchange" not in refused.text
