"""parse_signature_header: draft-cavage-12 §2.1/§2.2/§4.1 grammar, strict and total."""

from __future__ import annotations

import base64
import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stetgate.httpsig import (
    MAX_SIGNATURE_HEADER_LENGTH,
    MalformedSignature,
    SignatureError,
    parse_signature_header,
)

SIG = base64.b64encode(b"\x01" * 256).decode()
VALID = (
    'keyId="SN=1A2B,CA=CN=QTSP, O=Example, C=FR",algorithm="rsa-sha256",'
    f'headers="(request-target) Date digest x-request-id",signature="{SIG}"'
)


def test_all_parameters_are_parsed_with_commas_inside_quotes() -> None:
    params = parse_signature_header(VALID)

    assert params.key_id == "SN=1A2B,CA=CN=QTSP, O=Example, C=FR"
    assert params.algorithm == "rsa-sha256"
    assert params.headers == ("(request-target)", "date", "digest", "x-request-id")
    assert params.signature == b"\x01" * 256
    assert params.created is None and params.expires is None


def test_whitespace_around_separators_and_any_parameter_order_are_accepted() -> None:
    value = f' signature = "{SIG}" ,\theaders="(request-target)",  keyId="k" '

    params = parse_signature_header(value)

    assert (params.key_id, params.headers, params.algorithm) == ("k", ("(request-target)",), None)


def test_created_and_expires_are_parsed_bare_or_quoted() -> None:
    params = parse_signature_header(
        f'keyId="k",signature="{SIG}",created=1402170695,expires="1402170699.5"'
    )

    assert params.created == 1402170695
    assert params.expires == 1402170699.5


def test_unknown_well_formed_parameters_are_ignored() -> None:
    params = parse_signature_header(f'keyId="k",signature="{SIG}",version="1",nonce=abc')

    assert params.key_id == "k"


def test_absent_headers_parameter_defaults_to_created_per_draft_12() -> None:
    assert parse_signature_header(f'keyId="k",signature="{SIG}"').headers == ("(created)",)


def test_parameter_names_are_case_insensitive() -> None:
    assert parse_signature_header(f'KEYID="k",Signature="{SIG}"').key_id == "k"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f'keyId=k,signature="{SIG}"', id="keyId-unquoted"),
        pytest.param(f'keyId="k",signature={SIG.rstrip("=")}', id="signature-unquoted"),
        pytest.param(f'keyId="k",algorithm=rsa-sha256,signature="{SIG}"', id="algorithm-unquoted"),
        pytest.param(f'keyId="a",keyId="b",signature="{SIG}"', id="duplicate-keyId"),
        pytest.param(f'keyId="a",KeyId="a",signature="{SIG}"', id="duplicate-keyId-case"),
        pytest.param(f'keyId="k",signature="{SIG}",signature="{SIG}"', id="duplicate-signature"),
        pytest.param(
            f'keyId="k",algorithm="rsa-sha256",algorithm="hmac-sha256",signature="{SIG}"',
            id="duplicate-algorithm",
        ),
        pytest.param(
            f'keyId="k",headers="date",headers="(request-target)",signature="{SIG}"',
            id="duplicate-headers",
        ),
        pytest.param(f'keyId="k",signature="{SIG}",x="1",x="2"', id="duplicate-unknown"),
        pytest.param('keyId="k",signature=""', id="empty-signature"),
        pytest.param('keyId="k",signature="not base64!"', id="bad-base64"),
        pytest.param('keyId="k",signature="AAA"', id="bad-base64-padding"),
        pytest.param(
            f'keyId="k",signature="{base64.b64encode(b"x" * 2048).decode()}"', id="huge-signature"
        ),
        pytest.param(f'keyId="",signature="{SIG}"', id="empty-keyId"),
        pytest.param(f'signature="{SIG}"', id="missing-keyId"),
        pytest.param('keyId="k"', id="missing-signature"),
        pytest.param(f'keyId="k,signature="{SIG}"', id="unbalanced-quotes"),
        pytest.param(f'keyId="k",signature="{SIG}', id="unterminated-quote"),
        pytest.param(f'keyId="k",signature="{SIG}",', id="trailing-comma"),
        pytest.param(f'keyId="k",,signature="{SIG}"', id="empty-element"),
        pytest.param(f'keyId="k" signature="{SIG}"', id="missing-comma"),
        pytest.param(f'keyId="k",signature="{SIG}",headers=""', id="empty-headers"),
        pytest.param(f'keyId="k",signature="{SIG}",headers="date date"', id="header-listed-twice"),
        pytest.param(f'keyId="k",signature="{SIG}",headers="da:te"', id="invalid-header-name"),
        pytest.param(f'keyId="k",signature="{SIG}",headers="(foo)"', id="unknown-pseudo-header"),
        pytest.param(f'keyId="k",signature="{SIG}",created=soon', id="created-not-a-number"),
        pytest.param(f'keyId="k",signature="{SIG}",expires=-1', id="expires-negative"),
        pytest.param(f'keyId="k\nx",signature="{SIG}"', id="control-character"),
        pytest.param(f'Signature keyId="k",signature="{SIG}"', id="authorization-scheme-prefix"),
        pytest.param(f'keyId:"k",signature="{SIG}"', id="colon-instead-of-equals"),
        pytest.param(f'="k",signature="{SIG}"', id="missing-name"),
        pytest.param("keyId=", id="missing-value"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
    ],
)
def test_malformed_signature_header_is_refused(value: str) -> None:
    with pytest.raises(MalformedSignature) as caught:
        parse_signature_header(value)

    assert caught.value.reason == "malformed_signature"


def test_header_longer_than_8_kib_is_refused_before_parsing() -> None:
    value = f'keyId="k",signature="{SIG}",pad="' + "a" * MAX_SIGNATURE_HEADER_LENGTH + '"'

    with pytest.raises(MalformedSignature):
        parse_signature_header(value)


def test_pathological_input_at_the_size_limit_is_rejected_quickly() -> None:
    inputs = ['a="' * 2700, "a=" * 4000, "," * 8000, 'keyId="' + "\\" * 8000]
    start = time.perf_counter()
    for value in inputs:
        with pytest.raises(SignatureError):
            parse_signature_header(value[:MAX_SIGNATURE_HEADER_LENGTH])

    assert time.perf_counter() - start < 0.5


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_signature_error(value: str) -> None:
    with contextlib.suppress(SignatureError):
        parse_signature_header(value)


_pieces = st.sampled_from(
    [
        "keyId",
        "signature",
        "headers",
        "algorithm",
        "created",
        "expires",
        "=",
        '"',
        ",",
        " ",
        "\t",
        SIG,
        "(request-target)",
        "date",
        "1402170695",
        "1.5",
        "\\",
        "\x00",
        "é",
    ]
)


@settings(max_examples=1000)
@given(st.lists(_pieces, max_size=40).map("".join))
def test_near_miss_headers_only_ever_raise_signature_error(value: str) -> None:
    try:
        params = parse_signature_header(value)
    except SignatureError:
        return
    assert params.key_id and params.signature and params.headers
