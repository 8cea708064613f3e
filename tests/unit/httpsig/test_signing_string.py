"""The draft-cavage-12 §2.3 signing string, checked against bytes written out by hand."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from stetgate.httpsig import (
    MalformedSignature,
    MissingSignedHeader,
    ResolvedKey,
    build_signing_string,
    parse_signature_header,
    required_signed_headers,
    sign_request,
    verify_request,
)
from tests.unit.httpsig.signed_requests import NOW

KAT_TARGET = "/stet/psd2/v1.4.2/consents?x=%2Fa&limit=50"
KAT_BODY = b'{"consents":{"balances":[{"iban":"FR7612345987650123456789014"}]}}'
KAT_HEADERS = {
    "Host": "api.bank.example",
    "Date": "Mon, 02 Mar 2026 10:00:00 GMT",
    "Digest": "SHA-256=Y3Q0srOX4JDE7GnfskCooWi4ZtNXqzXEV1WnKmo54Mo=",
    "X-Request-ID": "  6e1b2d2c-2b8f-4c9b-9a7e-0f0c0a9b1c11\t",
    "PSU-IP-Address": "192.0.2.10",
}
KAT_SIGNED = ["(request-target)", "date", "digest", "x-request-id", "psu-ip-address"]
KAT_SIGNING_STRING = (
    b"(request-target): put /stet/psd2/v1.4.2/consents?x=%2Fa&limit=50\n"
    b"date: Mon, 02 Mar 2026 10:00:00 GMT\n"
    b"digest: SHA-256=Y3Q0srOX4JDE7GnfskCooWi4ZtNXqzXEV1WnKmo54Mo=\n"
    b"x-request-id: 6e1b2d2c-2b8f-4c9b-9a7e-0f0c0a9b1c11\n"
    b"psu-ip-address: 192.0.2.10"
)
"""Known answer, written by hand: method lower-cased, path and query byte for byte (``%2F``
kept), names lower-cased in ``headers=`` order, values trimmed of spaces and tabs, lines joined
by a single ``\\n`` with none after the last one. ``Digest`` is sha256(KAT_BODY) in base64."""


def test_signing_string_matches_the_hand_written_known_answer() -> None:
    assert build_signing_string("PUT", KAT_TARGET, KAT_HEADERS, KAT_SIGNED) == KAT_SIGNING_STRING


def test_signature_made_directly_with_cryptography_over_the_known_answer_verifies(
    tpp_key: RSAPrivateKey,
) -> None:
    raw = tpp_key.sign(KAT_SIGNING_STRING, padding.PKCS1v15(), hashes.SHA256())
    headers = dict(KAT_HEADERS)
    headers["Signature"] = (
        'keyId="kid-1",algorithm="rsa-sha256",'
        'headers="(request-target) date digest x-request-id psu-ip-address",'
        f'signature="{base64.b64encode(raw).decode()}"'
    )

    verified = verify_request(
        "PUT",
        KAT_TARGET,
        headers,
        KAT_BODY,
        {"kid-1": ResolvedKey(tpp_key.public_key(), "ctx")}.get,
        now=NOW,
    )

    assert verified.key_id == "kid-1"
    assert verified.context == "ctx"


def test_sign_request_produces_the_same_signature_as_cryptography(tpp_key: RSAPrivateKey) -> None:
    value = sign_request("PUT", KAT_TARGET, KAT_HEADERS, tpp_key, "kid-1", KAT_SIGNED)
    expected = tpp_key.sign(KAT_SIGNING_STRING, padding.PKCS1v15(), hashes.SHA256())

    assert value == (
        'keyId="kid-1",algorithm="rsa-sha256",'
        'headers="(request-target) date digest x-request-id psu-ip-address",'
        f'signature="{base64.b64encode(expected).decode()}"'
    )


# draft-cavage-http-signatures-12 Appendix C: its published 1024-bit test public key, request
# and the C.2 "Basic Test" signature (PKCS#1 v1.5 is deterministic, so the bytes are fixed).
DRAFT_PUBLIC_KEY = b"""-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
"""
DRAFT_HEADERS = {
    "Host": "example.com",
    "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
    "Content-Type": "application/json",
    "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "Content-Length": "18",
}
DRAFT_C2_SIGNATURE = (
    'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",'
    'signature="qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2a'
    "Ajn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDE"
    'mn04swr2Os0="'
)


def test_draft_appendix_c2_basic_signing_string_has_the_published_shape() -> None:
    signed = ["(request-target)", "host", "date"]

    data = build_signing_string("POST", "/foo?param=value&pet=dog", DRAFT_HEADERS, signed)

    assert data == (
        b"(request-target): post /foo?param=value&pet=dog\n"
        b"host: example.com\n"
        b"date: Sun, 05 Jan 2014 21:31:40 GMT"
    )


def test_draft_appendix_c2_published_signature_verifies_over_our_signing_string() -> None:
    public_key = serialization.load_pem_public_key(DRAFT_PUBLIC_KEY)
    assert isinstance(public_key, RSAPublicKey)
    params = parse_signature_header(DRAFT_C2_SIGNATURE)

    data = build_signing_string("POST", "/foo?param=value&pet=dog", DRAFT_HEADERS, params.headers)

    public_key.verify(params.signature, data, padding.PKCS1v15(), hashes.SHA256())


def test_draft_appendix_c3_all_headers_signing_string_has_the_published_shape() -> None:
    signed = ["(request-target)", "host", "date", "content-type", "digest", "content-length"]

    data = build_signing_string("POST", "/foo?param=value&pet=dog", DRAFT_HEADERS, signed)

    assert data == (
        b"(request-target): post /foo?param=value&pet=dog\n"
        b"host: example.com\n"
        b"date: Sun, 05 Jan 2014 21:31:40 GMT\n"
        b"content-type: application/json\n"
        b"digest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\n"
        b"content-length: 18"
    )


def test_repeated_header_values_are_joined_with_comma_space_in_order() -> None:
    headers = [("X-Forwarded-For", "192.0.2.1"), ("x-forwarded-for", " 198.51.100.7 ")]

    data = build_signing_string("GET", "/a", headers, ["x-forwarded-for"])

    assert data == b"x-forwarded-for: 192.0.2.1, 198.51.100.7"


def test_empty_header_value_gives_name_colon_space() -> None:
    assert build_signing_string("GET", "/a", {"X-Empty": "  "}, ["x-empty"]) == b"x-empty: "


def test_only_the_method_is_lowercased_never_the_target() -> None:
    data = build_signing_string("GET", "/Accounts?IBAN=FR76", {}, ["(request-target)"])

    assert data == b"(request-target): get /Accounts?IBAN=FR76"


def test_header_value_octets_are_kept_as_received_latin1() -> None:
    utf8_as_received = "Caf\u00c3\u00a9"  # "Café" in UTF-8, decoded as ISO-8859-1 by ASGI

    data = build_signing_string(
        "GET", "/a", {"PSU-User-Agent": utf8_as_received}, ["psu-user-agent"]
    )

    assert data == "psu-user-agent: Café".encode()


def test_signed_header_absent_from_request_is_refused_by_name() -> None:
    with pytest.raises(MissingSignedHeader) as caught:
        build_signing_string("GET", "/a", {"Date": "x"}, ["(request-target)", "x-request-id"])

    assert caught.value.header == "x-request-id"
    assert caught.value.reason == "missing_signed_header"


@pytest.mark.parametrize("pseudo", ["(created)", "(expires)"])
def test_created_and_expires_pseudo_headers_are_refused_with_rsa(pseudo: str) -> None:
    with pytest.raises(MalformedSignature):
        build_signing_string("GET", "/a", {}, ["(request-target)", pseudo])


def test_line_break_inside_a_header_value_is_refused() -> None:
    forged = {"X-Request-ID": "1\ndigest: SHA-256=AAAA"}

    with pytest.raises(MalformedSignature):
        build_signing_string("GET", "/a", forged, ["x-request-id"])


def test_header_value_outside_latin1_is_refused() -> None:
    with pytest.raises(MalformedSignature):
        build_signing_string("GET", "/a", {"X-A": "\u20ac"}, ["x-a"])


@pytest.mark.parametrize(
    ("method", "target"), [("GET", ""), ("GET", "/a b"), ("GE T", "/a"), ("", "/a")]
)
def test_invalid_method_or_target_is_refused(method: str, target: str) -> None:
    with pytest.raises(MalformedSignature):
        build_signing_string(method, target, {}, ["(request-target)"])


def test_empty_signed_header_list_is_refused() -> None:
    with pytest.raises(MalformedSignature):
        build_signing_string("GET", "/a", {}, [])


def test_sign_request_refuses_a_non_rsa_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(TypeError):
        sign_request("GET", "/a", {}, key, "kid", ["(request-target)"])  # type: ignore[arg-type]


@pytest.mark.parametrize("key_id", ["", 'kid"x', "kid\nx"])
def test_sign_request_refuses_a_key_id_that_cannot_be_quoted(
    tpp_key: RSAPrivateKey, key_id: str
) -> None:
    with pytest.raises(ValueError):
        sign_request("GET", "/a", {}, tpp_key, key_id, ["(request-target)"])


def test_required_signed_headers_lists_stet_policy_for_a_request() -> None:
    headers = {"PSU-IP-Address": "192.0.2.1", "psu-user-agent": "x", "Digest": "d"}

    assert required_signed_headers(headers, b"{}", ["Host"]) == (
        "(request-target)",
        "x-request-id",
        "digest",
        "host",
        "psu-ip-address",
        "psu-user-agent",
    )
    assert required_signed_headers({}, b"") == ("(request-target)", "x-request-id")
