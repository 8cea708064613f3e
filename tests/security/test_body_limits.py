"""Bodies over ``max_body_bytes``: 413 in the format of the API asked, X-Request-ID echoed, no
500 and no traceback in the log — declared (``Content-Length``) or streamed (chunked).

Found by an outside attack run: an unauthenticated chunked ``PUT /consents`` of 200 KB got a
500 and an ERROR traceback per request (log flooding), and the 413s of the resource and register
APIs had the OAuth shape without the X-Request-ID echo.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from stetgate.psd2.representations import BASE_PATH
from stetgate.registry.registrations import REGISTER_PATH
from tests.support.bank import RunningBank
from tests.support.token_side import TOKEN

REQUEST_ID = "4a1c7c9e-8d0b-4d6f-9a51-0f1e2d3c4b5a"
BIG = 200 * 1024


def chunks(size: int = BIG, piece: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b"x" * piece
        sent += piece


def send(bank: RunningBank, method: str, path: str, *, chunked: bool) -> httpx.Response:
    headers = {"X-Request-ID": REQUEST_ID, "Content-Type": "application/json"}
    content: bytes | Iterator[bytes] = chunks() if chunked else b"x" * BIG
    with bank.client() as http:
        return http.request(method, path, headers=headers, content=content)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_resource_api_answers_413_in_the_stet_format(
    bank: RunningBank, chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    response = send(bank, "PUT", f"{BASE_PATH}/consents", chunked=chunked)
    assert response.status_code == 413, response.text
    body = response.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}
    assert body["status"] == 413 and body["path"] == f"{BASE_PATH}/consents"
    assert response.headers["x-request-id"] == REQUEST_ID
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_register_api_answers_413_in_the_rfc7591_format_with_the_echo(
    bank: RunningBank,
) -> None:
    response = send(bank, "POST", REGISTER_PATH, chunked=False)
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and "error_description" in body
    assert response.headers["x-request-id"] == REQUEST_ID
    assert response.headers["cache-control"] == "no-store"


def test_register_api_authenticates_before_reading_a_streamed_body(bank: RunningBank) -> None:
    """Without a registration token the streamed body is never read: 401, echo, no 500."""
    response = send(bank, "POST", REGISTER_PATH, chunked=True)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert response.headers["x-request-id"] == REQUEST_ID


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_token_endpoint_answers_413_in_the_oauth_format(bank: RunningBank, chunked: bool) -> None:
    response = send(bank, "POST", TOKEN, chunked=chunked)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "invalid_request"


def test_an_unknown_path_under_the_resource_api_is_not_read_either(bank: RunningBank) -> None:
    response = send(bank, "POST", f"{BASE_PATH}/no-such-thing", chunked=False)
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_a_body_at_the_limit_is_read(bank: RunningBank) -> None:
    """The limit refuses only what is over it: a small malformed consent body gets the
    ordinary STET 400/401, not 413."""
    with bank.client() as http:
        response = http.put(
            f"{BASE_PATH}/consents",
            headers={"X-Request-ID": REQUEST_ID, "Content-Type": "application/json"},
            content=b"{}",
        )
    assert response.status_code in (400, 401)
    assert response.headers["x-request-id"] == REQUEST_ID
