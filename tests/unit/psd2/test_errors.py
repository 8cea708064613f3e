"""The STET ErrorModel rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from stetgate.psd2.errors import (
    HAL_JSON,
    BadRequest,
    NotAcceptable,
    TooManyRequests,
    Unauthorized,
    stet_error_response,
)

NOW = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def test_error_body_has_the_stet_members_and_echoes_the_request_id() -> None:
    response = stet_error_response(
        TooManyRequests("limit reached"),
        path="/stet/psd2/v1.4.2/accounts",
        request_id="req-1",
        now=NOW,
    )
    assert response.status_code == 429
    assert response.headers["content-type"] == HAL_JSON
    assert response.headers["x-request-id"] == "req-1"
    assert response.headers["cache-control"] == "no-store"
    assert json.loads(response.body) == {
        "timestamp": "2026-11-26T12:00:00.123+00:00",
        "status": 429,
        "error": "Too Many Requests",
        "message": "limit reached",
        "path": "/stet/psd2/v1.4.2/accounts",
    }


def test_long_messages_and_paths_are_clipped_to_140_characters() -> None:
    body = json.loads(
        stet_error_response(BadRequest("m" * 500), path="/p" * 200, request_id=None, now=NOW).body
    )
    assert len(body["message"]) == 140 and len(body["path"]) == 140


def test_without_a_valid_request_id_nothing_is_echoed() -> None:
    response = stet_error_response(NotAcceptable("no"), path="/", request_id=None, now=NOW)
    assert "x-request-id" not in response.headers


def test_unauthorized_carries_a_bearer_challenge() -> None:
    assert Unauthorized("x").headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert Unauthorized("x", error="").headers == {"WWW-Authenticate": "Bearer"}
    response = stet_error_response(Unauthorized("expired"), path="/", request_id="r", now=NOW)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
