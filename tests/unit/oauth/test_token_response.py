"""The token endpoint's success answer (`NoStoreJSONResponse`) is byte for byte what
``JSONResponse(body, headers=NO_STORE)`` sends (RFC 6749 §5.1: JSON, ``Cache-Control:
no-store``, ``Pragma: no-cache``), and refuses what JSONResponse refuses."""

from __future__ import annotations

import math
from typing import Any

import pytest
from starlette.responses import JSONResponse

from stetgate.oauth.errors import NO_STORE, NoStoreJSONResponse

BODIES: list[dict[str, Any]] = [
    {
        "access_token": "Zt3" * 14 + "x",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "r" * 43,
        "scope": "aisp",
    },
    {"access_token": "a", "token_type": "Bearer", "expires_in": 0, "scope": "cbpii"},
    {"text": 'é\u2028"quoted"\n', "none": None, "number": 1.5, "list": [1, "2"]},
]


@pytest.mark.parametrize("body", BODIES)
def test_same_bytes_headers_and_status_as_starlettes_json_response(body: dict[str, Any]) -> None:
    ours, theirs = NoStoreJSONResponse(body), JSONResponse(body, headers=NO_STORE)
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers
    assert ours.status_code == theirs.status_code == 200
    assert ours.background is None
    assert ours.headers["cache-control"] == "no-store" and ours.headers["pragma"] == "no-cache"


def test_a_value_json_does_not_allow_is_refused_as_by_json_response() -> None:
    with pytest.raises(ValueError):
        JSONResponse({"expires_in": math.nan})
    with pytest.raises(ValueError):
        NoStoreJSONResponse({"expires_in": math.nan})
