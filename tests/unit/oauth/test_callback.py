"""The redirect to the TPP's callback (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207) and the CSP
origin derived from it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from stetgate.oauth.callback import error_redirect, redirect_origin, success_redirect

ISS = "https://bank.example"


def _pairs(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_success_carries_code_state_and_iss_in_that_order() -> None:
    url = success_redirect("https://tpp.example/cb", code="c0de", state="s t&x", issuer=ISS)
    assert url.startswith("https://tpp.example/cb?")
    assert _pairs(url) == [("code", "c0de"), ("state", "s t&x"), ("iss", ISS)]


def test_error_carries_error_description_state_and_iss() -> None:
    url = error_redirect(
        "https://tpp.example/cb",
        error="access_denied",
        description="timeout",
        state="abc",
        issuer=ISS,
    )
    assert _pairs(url) == [
        ("error", "access_denied"),
        ("error_description", "timeout"),
        ("state", "abc"),
        ("iss", ISS),
    ]


def test_absent_state_is_not_invented() -> None:
    url = error_redirect(
        "https://tpp.example/cb", error="invalid_request", description=None, state=None, issuer=ISS
    )
    assert _pairs(url) == [("error", "invalid_request"), ("iss", ISS)]


def test_registered_query_is_kept_and_fragment_dropped() -> None:
    url = success_redirect("https://tpp.example/cb?tenant=7#frag", code="c", state=None, issuer=ISS)
    assert url == "https://tpp.example/cb?tenant=7&code=c&iss=https%3A%2F%2Fbank.example"


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://tpp.example/cb", "https://tpp.example"),
        ("https://tpp.example:8443/a/b?x=1", "https://tpp.example:8443"),
        ("http://127.0.0.1:9000/cb", "http://127.0.0.1:9000"),
        ("com.example.app:/oauth", "com.example.app:"),
        ("https://user@tpp.example/cb", "https://tpp.example"),
    ],
)
def test_redirect_origin_for_form_action(uri: str, origin: str) -> None:
    assert redirect_origin(uri) == origin


@pytest.mark.parametrize("uri", ["https://tpp.example;script-src */cb", "/relative", "https:///x"])
def test_redirect_origin_refuses_what_could_bend_the_policy(uri: str) -> None:
    assert redirect_origin(uri) is None
