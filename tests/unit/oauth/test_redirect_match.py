"""Registered redirect URIs: exact match, except the port of a loopback IP literal (RFC 8252
§7.3) — and nothing else about it."""

from __future__ import annotations

import pytest

from stetgate.oauth.redirect_match import is_registered_redirect

REGISTERED = (
    "https://tpp.example/cb",
    "https://127.0.0.1/callback",
    "http://[::1]:8080/cb?app=1",
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://tpp.example/cb",
        "https://127.0.0.1/callback",
        "https://127.0.0.1:49152/callback",
        "https://127.0.0.1:65535/callback",
        "http://[::1]/cb?app=1",
        "http://[::1]:1/cb?app=1",
    ],
)
def test_registered_or_a_loopback_literal_on_another_port(uri: str) -> None:
    assert is_registered_redirect(uri, REGISTERED)


@pytest.mark.parametrize(
    "uri",
    [
        "https://tpp.example:8443/cb",  # the port counts for a real host
        "https://tpp.example/cb/",
        "https://TPP.example/cb",
        "http://127.0.0.1:5000/callback",  # scheme
        "https://127.0.0.1:5000/callback/x",  # path
        "https://127.0.0.1:5000/callback?x=1",  # query
        "https://127.0.0.1:5000/callback#f",
        "https://127.0.0.1:0/callback",
        "https://127.0.0.1:65536/callback",
        "https://127.0.0.1:05000/callback",
        "https://127.0.0.2:5000/callback",
        "https://localhost:5000/callback",  # RFC 8252 §8.3: no exception for names
        "https://user@127.0.0.1:5000/callback",
        "https://127.0.0.1:5000@evil.example/callback",
        "https://127.0.0.1.evil.example/callback",
        "http://[::1]:8080/cb?app=2",
        "http://[::1]:8080/cb",
        "",
    ],
)
def test_anything_else_is_not_registered(uri: str) -> None:
    assert not is_registered_redirect(uri, REGISTERED)


def test_without_a_loopback_registration_no_port_is_free() -> None:
    assert not is_registered_redirect("https://127.0.0.1:5000/cb", ("https://tpp.example/cb",))
