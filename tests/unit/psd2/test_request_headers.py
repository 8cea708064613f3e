"""X-Request-ID, content negotiation and the PSU-* headers."""

from __future__ import annotations

import pytest

from stetgate.psd2.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from stetgate.psd2.request_headers import (
    header_map,
    parse_psu_context,
    require_acceptable,
    require_json_body,
    require_request_id,
)
from stetgate.serving.request_id import request_id_of


def test_header_map_lowercases_nothing_and_joins_repeats() -> None:
    assert header_map([(b"accept", b"a"), (b"x-request-id", b"1"), (b"accept", b"b")]) == {
        "accept": "a, b",
        "x-request-id": "1",
    }


@pytest.mark.parametrize("value", ["0f0e1a2b-1234-4cde-8f00-aabbccddeeff", "a", "x" * 100])
def test_well_formed_request_ids_are_accepted_and_echoable(value: str) -> None:
    assert require_request_id({"x-request-id": value}) == value
    assert request_id_of({"x-request-id": value}) == value


@pytest.mark.parametrize("value", ["", "with space", "x" * 101, "é", "a\tb"])
def test_malformed_request_ids_are_refused_and_never_echoed(value: str) -> None:
    with pytest.raises(BadRequest):
        require_request_id({"x-request-id": value})
    assert request_id_of({"x-request-id": value}) is None


def test_a_missing_request_id_is_refused() -> None:
    with pytest.raises(BadRequest, match="X-Request-ID"):
        require_request_id({})


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/hal+json",
        "application/json",
        "text/html, application/json;q=0.5",
        "application/*",
        "APPLICATION/HAL+JSON; charset=utf-8",
    ],
)
def test_acceptable_media_types(accept: str | None) -> None:
    require_acceptable({} if accept is None else {"accept": accept})


@pytest.mark.parametrize(
    "accept", ["text/html", "application/xml", "application/json;q=0", "application/json;q=zero"]
)
def test_unacceptable_media_types_get_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        require_acceptable({"accept": accept})


def test_bodies_must_be_json() -> None:
    require_json_body({"content-type": "application/json; charset=utf-8"})
    for value in ("text/plain", "application/x-www-form-urlencoded", ""):
        with pytest.raises(UnsupportedMediaType):
            require_json_body({"content-type": value})
    with pytest.raises(UnsupportedMediaType):
        require_json_body({})


def test_psu_context_presence_follows_psu_ip_address() -> None:
    assert not parse_psu_context({}).psu_present
    context = parse_psu_context(
        {
            "psu-ip-address": "2001:DB8::7",
            "psu-ip-port": "443",
            "psu-http-method": "get",
            "psu-geo-location": "GEO:48.856614;2.352222",
            "psu-user-agent": "Mozilla/5.0",
            "psu-device-id": "99435c7e-ad88-49ec-a2ad-99ddcb1f5555",
        }
    )
    assert context.psu_present and context.ip_address == "2001:db8::7"
    assert (context.ip_port, context.http_method) == (443, "GET")
    assert context.geo_location == "GEO:48.856614;2.352222"


@pytest.mark.parametrize(
    "headers",
    [
        {"psu-ip-address": "999.1.1.1"},
        {"psu-ip-address": "localhost"},
        {"psu-ip-address": ""},
        {"psu-ip-port": "70000"},
        {"psu-ip-port": "-1"},
        {"psu-http-method": "FETCH"},
        {"psu-geo-location": "Paris"},
        {"psu-user-agent": "u" * 1025},
    ],
)
def test_malformed_psu_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        parse_psu_context(headers)
