"""RFC 6749 §3.2 form bodies and RFC 7636 PKCE S256."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stetgate.oauth.errors import InvalidRequest
from stetgate.oauth.form import MAX_PARAMETERS, form_pairs, parse_form_body
from stetgate.oauth.pkce import (
    is_valid_s256_challenge,
    is_valid_verifier,
    s256_challenge,
    verifier_matches,
)

FORM = "application/x-www-form-urlencoded"


def test_form_is_decoded_and_empty_values_are_omitted() -> None:
    form = parse_form_body(
        FORM, b"grant_type=refresh_token&scope=&redirect_uri=https%3A%2F%2Fa%2Fb%3Fx%3D1"
    )
    assert form == {"grant_type": "refresh_token", "redirect_uri": "https://a/b?x=1"}


@pytest.mark.parametrize(
    "content_type",
    [f"{FORM}; charset=utf-8", f"{FORM};charset=UTF-8", "Application/X-WWW-Form-Urlencoded"],
)
def test_form_media_type_variants_are_accepted(content_type: str) -> None:
    assert parse_form_body(content_type, b"a=1") == {"a": "1"}


def test_empty_body_is_an_empty_form() -> None:
    assert parse_form_body(FORM, b"") == {}


@pytest.mark.parametrize(
    ("content_type", "body", "fragment"),
    [
        (None, b"a=1", "Content-Type"),
        ("application/json", b"a=1", "Content-Type"),
        ("multipart/form-data; boundary=x", b"a=1", "Content-Type"),
        (f"{FORM}; charset=latin-1", b"a=1", "UTF-8"),
        (FORM, b"a=1&a=2", "repeated"),
        (FORM, b"a=1&a=", "repeated"),
        (FORM, b"a=%FF", "UTF-8"),
        (FORM, "a=é".encode(), "UTF-8"),
        (FORM, b"a", "malformed"),
        (FORM, b"&".join(b"p%d=1" % i for i in range(21)), "malformed"),
        (FORM, b"a=" + b"x" * 2049, "too long"),
        (FORM, b"x" * 65 + b"=1", "too long"),
        (FORM, b"a=1%0A2", "control"),
        (FORM, b"a=1%002", "control"),
        (FORM, b"a=1\x012", "control"),
        (FORM, b"a\x7f=1", "control"),
        (FORM, b"a=1\t", "control"),
        (FORM, b"a=1&&b=2", "malformed"),
        (FORM, b"a=1&", "malformed"),
    ],
)
def test_bad_forms_are_invalid_request(
    content_type: str | None, body: bytes, fragment: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form_body(content_type, body)
    assert fragment in caught.value.description


def test_plus_is_a_space_and_escapes_are_utf8() -> None:
    assert parse_form_body(FORM, b"a=x+y&b%2Bc=%C3%A9+%2B") == {"a": "x y", "b+c": "é +"}


def _outcome(parse: object, text: str) -> object:
    try:
        return parse(text)  # type: ignore[operator]
    except UnicodeDecodeError:
        return "UnicodeDecodeError"
    except ValueError:
        return "ValueError"


def _parse_qsl(text: str) -> list[tuple[str, str]]:
    return parse_qsl(
        text,
        keep_blank_values=True,
        strict_parsing=bool(text),
        encoding="utf-8",
        errors="strict",
        max_num_fields=MAX_PARAMETERS,
    )


@given(st.text(alphabet="ab=&+%2C3AF9é\x00\n ", max_size=60))
def test_form_pairs_parses_exactly_as_strict_parse_qsl(text: str) -> None:
    assert _outcome(form_pairs, text) == _outcome(_parse_qsl, text)


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert s256_challenge(verifier) == challenge
    assert verifier_matches(verifier, challenge)
    assert is_valid_s256_challenge(challenge)
    assert not verifier_matches(verifier[:-1] + "l", challenge)


@pytest.mark.parametrize("verifier", ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + " "])
def test_malformed_verifiers_never_match(verifier: str) -> None:
    assert not is_valid_verifier(verifier)
    assert not verifier_matches(verifier, s256_challenge("a" * 43))


@pytest.mark.parametrize("challenge", ["", "a" * 42, "a" * 44, "a" * 42 + "="])
def test_malformed_challenges(challenge: str) -> None:
    assert not is_valid_s256_challenge(challenge)
