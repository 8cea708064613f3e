"""The signed session cookie (RFC 6265bis: __Host- prefix, HttpOnly, Secure, SameSite=Lax)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stetgate.psu.sessions import PLAIN_COOKIE_NAME, SECURE_COOKIE_NAME, SessionCookie

KEY = b"k" * 32


def _request_with(name: str, value: str) -> Request:
    return Request({"type": "http", "headers": [(b"cookie", f"{name}={value}".encode())]})


def _issued(cookie: SessionCookie, session_id: str) -> str:
    response = Response()
    cookie.attach(response, session_id)
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def test_round_trip_and_attributes() -> None:
    cookie = SessionCookie(KEY, secure=True)
    response = Response()
    cookie.attach(response, "session-1")
    header = response.headers["set-cookie"]
    assert header.startswith(f"{SECURE_COOKIE_NAME}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute in header
    assert "Max-Age" not in header and "expires" not in header.lower()
    assert "session-1" in header  # signed, not encrypted: the id is random anyway
    value = header.split(";", 1)[0].split("=", 1)[1]
    assert cookie.session_id(_request_with(SECURE_COOKIE_NAME, value)) == "session-1"


def test_tampered_or_foreign_cookies_are_refused() -> None:
    cookie = SessionCookie(KEY, secure=True)
    value = _issued(cookie, "session-1")
    forged = value.replace("session-1", "session-2")
    assert cookie.session_id(_request_with(SECURE_COOKIE_NAME, forged)) is None
    other = SessionCookie(b"x" * 32, secure=True)
    assert other.session_id(_request_with(SECURE_COOKIE_NAME, value)) is None
    assert cookie.session_id(_request_with(SECURE_COOKIE_NAME, "x" * 500)) is None
    assert cookie.session_id(Request({"type": "http", "headers": []})) is None


def test_plain_http_runs_use_a_name_without_the_host_prefix() -> None:
    cookie = SessionCookie(KEY, secure=False)
    assert cookie.name == PLAIN_COOKIE_NAME
    value = _issued(cookie, "abc")
    assert cookie.session_id(_request_with(PLAIN_COOKIE_NAME, value)) == "abc"
