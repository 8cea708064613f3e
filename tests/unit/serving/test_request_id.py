"""The one reader of X-Request-ID: a value is usable (echoed, audited) only when well formed."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from stetgate.serving.request_id import REQUEST_ID_HEADER, request_id_of, request_id_sent


@pytest.mark.parametrize("value", ["0f0e1a2b-1234-4cde-8f00-aabbccddeeff", "a", "x" * 100, "!~"])
def test_a_well_formed_request_id_is_read(value: str) -> None:
    assert request_id_of({"x-request-id": value}) == value
    assert request_id_of(Headers({REQUEST_ID_HEADER: value})) == value


@pytest.mark.parametrize("value", ["", "x" * 101, "has space", "tab\there", "caf\u00e9", "a\r\nb"])
def test_a_malformed_request_id_reads_as_none_but_counts_as_sent(value: str) -> None:
    headers = {"x-request-id": value}
    assert request_id_of(headers) is None
    assert request_id_sent(headers)


def test_a_missing_request_id_is_neither_read_nor_sent() -> None:
    assert request_id_of({}) is None
    assert not request_id_sent({})
    assert not request_id_sent(Headers({"accept": "application/json"}))
