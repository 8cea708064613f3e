"""The browser's ``Accept-Language`` (RFC 9110 §12.5.4) picks the first page's language."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from stetgate.psu.languages import accepted_languages, browser_language
from stetgate.psu.theme import load_theme

THEME = load_theme(None, "fr")


def _request(accept: str | None, query: str = "") -> Request:
    headers = [] if accept is None else [(b"accept-language", accept.encode())]
    return Request({"type": "http", "headers": headers, "query_string": query.encode()})


def test_weights_order_the_languages_and_ties_keep_header_order() -> None:
    assert accepted_languages("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5") == [
        "fr",
        "en",
        "de",
    ]
    assert accepted_languages("de;q=0.5, en-GB;q=0.9, fr") == ["fr", "en", "de"]
    assert accepted_languages("en, fr") == ["en", "fr"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "*",
        "en;q=0",
        "en;q=0.000",
        "en;q=2",
        "en;q=-1",
        "en;q=abc",
        "12-34",
        "en_US!",
        ";q=1",
        ",,,",
        "x" * 600,
    ],
)
def test_refused_malformed_or_absent_languages_count_for_nothing(header: str | None) -> None:
    assert accepted_languages(header) == []


def test_only_the_first_512_characters_are_read() -> None:
    assert accepted_languages("de;q=0.1," + " " * 600 + "en") == ["de"]


def test_the_browser_language_is_the_first_one_the_pages_speak() -> None:
    assert browser_language(_request("de-DE, en;q=0.8, fr;q=0.7"), THEME.texts) == "en"
    assert browser_language(_request("de, it"), THEME.texts) is None
    assert browser_language(_request(None), THEME.texts) is None
    assert browser_language(_request("en;q=0, fr;q=0.1"), THEME.texts) == "fr"


def test_the_psus_choice_then_the_journey_then_the_browser_then_the_default() -> None:
    assert THEME.request_language(_request("en")) == "en"
    assert THEME.request_language(_request("de")) == "fr"  # the bank's default
    assert THEME.request_language(_request("en", "lang=fr")) == "fr"  # the PSU's choice
    assert THEME.request_language(_request("en"), "fr") == "fr"  # kept in the journey
    assert THEME.request_language(_request("fr", "lang=xx"), "en") == "en"
    assert THEME.request_language(_request("en", "lang=xx")) == "en"
