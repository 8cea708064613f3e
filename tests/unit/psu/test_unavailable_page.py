"""The 503 page's language links: a GET is tried again with its own query in the other
language (``/authorize`` keeps its parameters), a form leads to the journey's current screen;
the page has the bank's help. No database: the page must render when the database is down."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from stetgate.psu.theme import load_theme
from stetgate.psu.unavailable import unavailable_page

THEME = load_theme(None, "fr")
_LANG_LINK = re.compile(r'<a class="lang" href="([^"]+)" hreflang="(\w+)"')


def _request(method: str, path: str, query: bytes = b"", language: str = "") -> Request:
    headers = [(b"accept-language", language.encode())] if language else []
    app = SimpleNamespace(state=SimpleNamespace(theme=THEME))
    return Request(
        {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": query,
            "headers": headers,
            "app": app,
        }
    )


def _links(body: bytes) -> dict[str, str]:
    return {lang: html.unescape(href) for href, lang in _LANG_LINK.findall(body.decode())}


def test_a_get_is_tried_again_with_its_query_in_the_other_language() -> None:
    query = b"response_type=code&client_id=PSDFR-ACPR-1&lang=fr&state=a%26b"
    response = unavailable_page(_request("GET", "/stet/psd2/oauth/authorize", query))
    assert response.status_code == 503 and response.headers["retry-after"]
    assert _links(bytes(response.body)) == {
        "en": "/stet/psd2/oauth/authorize?response_type=code&client_id=PSDFR-ACPR-1"
        "&state=a%26b&lang=en"
    }
    assert 'id="help"' in bytes(response.body).decode()


def test_a_form_leads_to_the_journeys_current_screen() -> None:
    response = unavailable_page(_request("POST", "/psu/sca", language="en"))
    body = bytes(response.body)
    assert '<html lang="en">' in body.decode()
    assert _links(body) == {"fr": "/psu/login?lang=fr"}


@pytest.mark.parametrize("language", ["fr-FR,fr;q=0.9", "en-GB,en;q=0.8", "de, en;q=0.5"])
def test_the_page_follows_the_browsers_language(language: str) -> None:
    response = unavailable_page(_request("GET", "/psu/login", language=language))
    expected = "fr" if language.startswith("fr") else "en"
    assert f'<html lang="{expected}">' in bytes(response.body).decode()
