"""Authorization-request rules as pure functions: query parsing (RFC 6749 §3.1) and request
validation (RFC 6749 §4.1.1, §4.1.2.1; RFC 7636 §4.4.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from stetgate.oauth.authorize import (
    RedirectedError,
    echoable_state,
    parse_query,
    validate_request,
)
from stetgate.oauth.clients import Client

CB = "https://tpp.example/cb"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _client(require_pkce: bool = False) -> Client:
    return Client(
        client_id="PSDFR-ACPR-1",
        org_id="PSDFR-ACPR-1",
        name="T",
        origin="golive",
        status="active",
        redirect_uris=(CB,),
        require_pkce=require_pkce,
        contacts=(),
        grant_types=(),
        response_types=(),
        certificates=(),
        created_at=NOW,
        updated_at=NOW,
    )


def _validate(raw: str, *, require_pkce: bool = False, extended: bool = False) -> object:
    return validate_request(
        parse_query(raw.encode()), _client(require_pkce), CB, allow_extended_history=extended
    )


def _refusal(raw: str, **kwargs: bool) -> RedirectedError:
    with pytest.raises(RedirectedError) as caught:
        _validate(raw, **kwargs)
    return caught.value


BASE = {
    "response_type": "code",
    "client_id": "PSDFR-ACPR-1",
    "redirect_uri": CB,
    "scope": "aisp",
    "state": "s1",
}


def test_parse_keeps_repeats_drops_empty_values_and_decodes_plus() -> None:
    params = parse_query(b"a=1&a=2&b=&c=x+y&d=%41")
    assert params.values == {"a": ["1", "2"], "c": ["x y"], "d": ["A"]}
    assert params.single("a") is None and params.single("c") == "x y"
    assert params.problem("a") == "a is repeated"


@pytest.mark.parametrize("raw", [b"scope=%zz", b"scope=%C3%28", b"scope=%4"])
def test_parse_marks_undecodable_values_malformed(raw: bytes) -> None:
    params = parse_query(raw)
    assert "scope" in params.malformed and params.problem("scope") == "scope is malformed"


def test_parse_flags_an_oversized_query() -> None:
    assert parse_query(b"x=" + b"a" * 9000).oversized
    assert not parse_query(b"x=a").oversized


def test_a_valid_request_with_pkce() -> None:
    request = _validate(
        urlencode({**BASE, "code_challenge": CHALLENGE, "code_challenge_method": "S256"})
    )
    assert request.role_scope == "aisp" and request.scope == "aisp"  # type: ignore[attr-defined]
    assert request.code_challenge == CHALLENGE  # type: ignore[attr-defined]
    assert request.state == "s1"  # type: ignore[attr-defined]


def test_extended_history_only_when_the_bank_offers_it() -> None:
    raw = urlencode({**BASE, "scope": "extended_transaction_history aisp"})
    assert _refusal(raw).error.error == "invalid_scope"
    assert _validate(raw, extended=True).scope == "aisp extended_transaction_history"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "cbpii aisp"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"code_challenge": CHALLENGE, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": CHALLENGE + "A", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
        ({"state": "é"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://tpp.example/r.jwt"}, "request_uri_not_supported"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "request_uri_not_supported"),
    ],
)
def test_refusals(changes: dict[str, str | None], error: str) -> None:
    query = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    assert _refusal(urlencode(query)).error.error == error


def test_pkce_required_by_the_client() -> None:
    refusal = _refusal(urlencode(BASE), require_pkce=True)
    assert (refusal.error.error, refusal.error.description) == (
        "invalid_request",
        "code challenge required",
    )


def test_state_is_echoed_only_when_single_and_well_formed() -> None:
    assert echoable_state(parse_query(b"state=abc")) == "abc"
    assert echoable_state(parse_query(b"state=a&state=b")) is None
    assert echoable_state(parse_query(b"state=" + b"x" * 1001)) is None
    assert echoable_state(parse_query(b"state=%FF")) is None
    refusal = _refusal(urlencode(BASE) + "&state=again")
    assert refusal.state is None
