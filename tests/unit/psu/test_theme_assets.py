"""The theme's stylesheet and logo as browsers get them: their own type, an SVG that runs
nothing even opened on its own, caching bound to the content's hash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from stetgate.psu.theme import Theme, load_theme
from stetgate.psu.theme_assets import SVG_POLICY, routes

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<rect width="10" height="10"/></svg>'
)


@pytest.fixture
def theme(tmp_path: Path) -> Theme:
    (tmp_path / "theme.toml").write_text('[colors]\nprimary = "#005a3c"\n')
    (tmp_path / "logo.svg").write_bytes(SVG)
    return load_theme(tmp_path, "fr")


def _get(theme: Theme, url: str) -> httpx.Response:
    app = Starlette(routes=routes())
    app.state.theme = theme

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bank.test") as client:
            return await client.get(url)

    return asyncio.run(fetch())


def test_the_svg_logo_has_its_type_and_a_sandboxing_policy(theme: Theme) -> None:
    response = _get(theme, theme.assets["logo.svg"].url)
    assert response.status_code == 200 and response.content == SVG
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["content-security-policy"] == SVG_POLICY
    assert "sandbox" in SVG_POLICY and "script-src" not in SVG_POLICY
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_stylesheet(theme: Theme) -> None:
    response = _get(theme, "/psu/static/theme/theme.css")
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert "--primary: #005a3c;" in response.text
    assert response.headers["cache-control"] == "no-cache"  # no or an old ?v=: revalidate
    assert "content-security-policy" not in response.headers


@pytest.mark.parametrize("name", ["logo.png", "psu.css", "..%2Ftheme.toml", "theme.toml"])
def test_nothing_else_is_served(theme: Theme, name: str) -> None:
    assert _get(theme, f"/psu/static/theme/{name}").status_code == 404
