"""verify_request: stetgate's HTTP-signature policy (docs/decisions.md#http-signatures) on the
bank side."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID

from stetgate.httpsig import (
    BadSignature,
    DigestMismatch,
    MalformedSignature,
    MissingDigest,
    MissingSignature,
    MissingSignedHeader,
    ResolvedKey,
    SignatureError,
    StaleDate,
    UnknownKey,
    UnsupportedAlgorithm,
    VerifiedSignature,
    build_signing_string,
    compute_digest,
    verify_request,
)
from tests.unit.httpsig.signed_requests import (
    BODY,
    KEY_ID,
    NOW,
    SIGNED_WITH_BODY,
    TARGET,
    base_headers,
    signed_request,
)

Registry = dict[str, ResolvedKey[str]]


def verify(
    headers: dict[str, str],
    registry: Registry,
    *,
    method: str = "PUT",
    target: str = TARGET,
    body: bytes = BODY,
    max_skew_seconds: int = 300,
    required_extra: Sequence[str] = (),
) -> VerifiedSignature[str]:
    """verify_request with the defaults of a PUT carrying BODY to TARGET at NOW."""
    return verify_request(
        method,
        target,
        headers,
        body,
        registry.get,
        now=NOW,
        max_skew_seconds=max_skew_seconds,
        required_extra=required_extra,
    )


def with_signature_params(headers: dict[str, str], params: str) -> dict[str, str]:
    out = dict(headers)
    out["Signature"] = params
    return out


# --- accepted -------------------------------------------------------------------------------


def test_request_signed_with_the_registered_qsealc_key_is_accepted(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    verified = verify_request("PUT", TARGET, signed_request(tpp_key), BODY, registry.get, now=NOW)

    assert verified.key_id == KEY_ID
    assert verified.context == "tpp-42-qsealc"
    assert verified.signed_headers == SIGNED_WITH_BODY
    assert verified.algorithm == "rsa-sha256"


def test_get_without_body_needs_no_digest(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key, method="GET", body=b"")

    verify(headers, registry, method="GET", body=b"")


def test_absent_algorithm_means_rsa_sha256(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key)
    headers["Signature"] = headers["Signature"].replace('algorithm="rsa-sha256",', "")

    verify(headers, registry)


def test_header_names_are_matched_case_insensitively_and_pairs_are_accepted(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    pairs = [(name.upper(), value) for name, value in headers.items()]

    verify_request("PUT", TARGET, pairs, BODY, registry.get, now=NOW)


def test_resolver_may_return_the_registered_certificate_as_context(
    tpp_key: RSAPrivateKey,
) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TPP QSealC")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(tpp_key.public_key())
        .serial_number(0x1A2B3C)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(tpp_key, hashes.SHA256())
    )
    registered = {KEY_ID: ResolvedKey.from_certificate(certificate)}

    verified = verify_request("PUT", TARGET, signed_request(tpp_key), BODY, registered.get, now=NOW)

    assert verified.context is certificate


def test_date_at_the_edge_of_the_allowed_skew_is_accepted(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key, headers=base_headers(BODY, NOW - timedelta(seconds=300)))

    verify(headers, registry)


# --- tampering ------------------------------------------------------------------------------


def test_tampered_body_fails_the_digest(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    with pytest.raises(DigestMismatch):
        verify(signed_request(tpp_key), registry, body=BODY.replace(b"014", b"015"))


def test_digest_recomputed_for_a_tampered_body_breaks_the_signature(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    forged_body = b'{"consents":{}}'
    headers = signed_request(tpp_key)
    headers["Digest"] = compute_digest(forged_body)

    with pytest.raises(BadSignature):
        verify(headers, registry, body=forged_body)


def test_tampered_x_request_id_breaks_the_signature(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    headers["X-Request-ID"] = "00000000-0000-0000-0000-000000000000"

    with pytest.raises(BadSignature):
        verify(headers, registry)


def test_tampered_psu_ip_address_breaks_the_signature(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    headers["PSU-IP-Address"] = "203.0.113.9"

    with pytest.raises(BadSignature):
        verify(headers, registry)


@pytest.mark.parametrize(
    "target",
    [
        TARGET.replace("FR7612345", "FR7699999"),
        TARGET.replace("limit=50", "limit=500"),
        TARGET.split("?")[0],
        TARGET + "&extra=1",
        TARGET.replace("/accounts", "/Accounts"),
    ],
)
def test_tampered_path_or_query_breaks_the_signature(
    tpp_key: RSAPrivateKey, registry: Registry, target: str
) -> None:
    with pytest.raises(BadSignature):
        verify(signed_request(tpp_key), registry, target=target)


def test_changed_method_breaks_the_signature(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    with pytest.raises(BadSignature):
        verify(signed_request(tpp_key), registry, method="POST")


def test_signature_of_another_key_is_refused(other_key: RSAPrivateKey, registry: Registry) -> None:
    with pytest.raises(BadSignature):
        verify(signed_request(other_key), registry)


def test_truncated_signature_is_refused(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key)
    raw = tpp_key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())[:100]
    headers["Signature"] = headers["Signature"].rsplit('signature="', 1)[0] + (
        f'signature="{base64.b64encode(raw).decode()}"'
    )

    with pytest.raises(BadSignature):
        verify(headers, registry)


# --- signed-header policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    "left_out",
    [
        pytest.param("(request-target)", id="request-target"),
        pytest.param("x-request-id", id="x-request-id"),
        pytest.param("digest", id="digest-with-a-body"),
        pytest.param("psu-ip-address", id="psu-header-present"),
    ],
)
def test_mandatory_header_left_out_of_the_signature_is_refused_by_name(
    tpp_key: RSAPrivateKey, registry: Registry, left_out: str
) -> None:
    signed = [h for h in SIGNED_WITH_BODY if h != left_out]

    with pytest.raises(MissingSignedHeader) as caught:
        verify(signed_request(tpp_key, signed=signed), registry)

    assert caught.value.header == left_out


def test_x_request_id_signed_but_absent_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    del headers["X-Request-ID"]

    with pytest.raises(MissingSignedHeader) as caught:
        verify(headers, registry)

    assert caught.value.header == "x-request-id"


def test_psu_header_added_after_signing_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    headers["PSU-User-Agent"] = "Mozilla/5.0"

    with pytest.raises(MissingSignedHeader) as caught:
        verify(headers, registry)

    assert caught.value.header == "psu-user-agent"


def test_body_without_digest_header_is_refused(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = base_headers(BODY)
    del headers["Digest"]
    signed = [h for h in SIGNED_WITH_BODY if h != "digest"]
    headers = signed_request(tpp_key, headers=headers, signed=signed)

    with pytest.raises(MissingSignedHeader) as caught:
        verify(headers, registry)

    assert caught.value.header == "digest"


def test_body_without_digest_header_but_digest_listed_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    del headers["Digest"]

    with pytest.raises(MissingDigest):
        verify(headers, registry)


def test_digest_on_an_empty_body_must_still_match(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = base_headers(b"")
    headers["Digest"] = compute_digest(b"something else")
    headers = signed_request(tpp_key, method="GET", body=b"", headers=headers)

    with pytest.raises(DigestMismatch):
        verify(headers, registry, method="GET", body=b"")


def test_required_extra_header_not_signed_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    with pytest.raises(MissingSignedHeader) as caught:
        verify(signed_request(tpp_key), registry, required_extra=["Host"])

    assert caught.value.header == "host"


def test_signature_without_headers_parameter_covers_only_created_and_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    params = headers["Signature"].split(",")
    headers["Signature"] = ",".join(p for p in params if not p.startswith("headers="))

    with pytest.raises(MissingSignedHeader) as caught:
        verify(headers, registry)

    assert caught.value.header == "(request-target)"


# --- time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400 * 365])
def test_signed_date_outside_the_skew_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry, offset: int
) -> None:
    headers = signed_request(tpp_key, headers=base_headers(BODY, NOW + timedelta(seconds=offset)))

    with pytest.raises(StaleDate):
        verify(headers, registry)


def test_skew_is_a_setting(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key, headers=base_headers(BODY, NOW - timedelta(seconds=61)))

    with pytest.raises(StaleDate):
        verify(headers, registry, max_skew_seconds=60)


@pytest.mark.parametrize("date", ["yesterday", "", "Mon, 02 Mar 2026 10:00:00 GMT" * 4])
def test_signed_date_that_is_not_an_http_date_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry, date: str
) -> None:
    headers = base_headers(BODY)
    headers["Date"] = date

    with pytest.raises(StaleDate):
        verify(signed_request(tpp_key, headers=headers), registry)


def test_created_in_the_future_is_refused(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key)
    headers["Signature"] += f",created={int(NOW.timestamp()) + 3600}"

    with pytest.raises(StaleDate):
        verify(headers, registry)


def test_expires_in_the_past_is_refused(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key)
    headers["Signature"] += f",expires={int(NOW.timestamp()) - 3600}"

    with pytest.raises(StaleDate):
        verify(headers, registry)


def test_naive_clock_is_a_programming_error(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    with pytest.raises(ValueError):
        verify_request(
            "PUT", TARGET, signed_request(tpp_key), BODY, registry.get, now=NOW.replace(tzinfo=None)
        )


# --- algorithm and key type -----------------------------------------------------------------


def test_hmac_with_the_public_key_pem_as_secret_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    """The httpsig-package forgery: the attacker knows the public key and HMACs with it."""
    headers = base_headers(BODY)
    secret = tpp_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    data = build_signing_string("PUT", TARGET, headers, SIGNED_WITH_BODY)
    forged = base64.b64encode(hmac.new(secret, data, hashlib.sha256).digest()).decode()
    params = f'keyId="{KEY_ID}",headers="{" ".join(SIGNED_WITH_BODY)}",signature="{forged}"'

    with pytest.raises(UnsupportedAlgorithm):
        verify(with_signature_params(headers, params + ',algorithm="hmac-sha256"'), registry)
    with pytest.raises(BadSignature):
        verify(with_signature_params(headers, params + ',algorithm="rsa-sha256"'), registry)
    with pytest.raises(BadSignature):
        verify(with_signature_params(headers, params), registry)


@pytest.mark.parametrize(
    "algorithm", ["hmac-sha256", "ecdsa-sha256", "hs2019", "rsa-sha1", "rsa-sha512", "none", "x"]
)
def test_algorithm_other_than_rsa_sha256_is_refused(
    tpp_key: RSAPrivateKey, registry: Registry, algorithm: str
) -> None:
    headers = signed_request(tpp_key)
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", algorithm)

    with pytest.raises(UnsupportedAlgorithm):
        verify(headers, registry)


def test_ec_key_registered_under_the_key_id_is_refused_whatever_the_header_says() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    headers = base_headers(BODY)
    data = build_signing_string("PUT", TARGET, headers, SIGNED_WITH_BODY)
    raw = ec_key.sign(data, ec.ECDSA(hashes.SHA256()))
    headers["Signature"] = (
        f'keyId="{KEY_ID}",headers="{" ".join(SIGNED_WITH_BODY)}",'
        f'signature="{base64.b64encode(raw).decode()}"'
    )
    registry = {KEY_ID: ResolvedKey(ec_key.public_key(), "ec")}

    with pytest.raises(UnsupportedAlgorithm):
        verify(headers, registry)


def test_rsa_key_under_2048_bits_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    registry = {KEY_ID: ResolvedKey(weak.public_key(), "weak")}

    with pytest.raises(UnsupportedAlgorithm):
        verify(signed_request(weak), registry)


# --- keyId resolution -----------------------------------------------------------------------


def test_unknown_key_id_is_refused(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key, key_id="https://attacker.example/cert.pem")

    with pytest.raises(UnknownKey):
        verify(headers, registry)


@pytest.mark.parametrize("error", [KeyError("nope"), LookupError("nope"), UnknownKey("nope")])
def test_resolver_raising_a_lookup_error_means_unknown_key(
    tpp_key: RSAPrivateKey, error: Exception
) -> None:
    def resolve(key_id: str) -> ResolvedKey[str]:
        raise error

    with pytest.raises(UnknownKey):
        verify_request("PUT", TARGET, signed_request(tpp_key), BODY, resolve, now=NOW)


def test_resolver_infrastructure_failure_is_not_turned_into_a_401(
    tpp_key: RSAPrivateKey,
) -> None:
    def resolve(key_id: str) -> ResolvedKey[str]:
        raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        verify_request("PUT", TARGET, signed_request(tpp_key), BODY, resolve, now=NOW)


def test_resolver_is_not_consulted_before_the_request_passes_the_cheap_checks(
    tpp_key: RSAPrivateKey,
) -> None:
    calls: list[str] = []

    def resolve(key_id: str) -> ResolvedKey[str]:
        calls.append(key_id)
        return ResolvedKey(tpp_key.public_key(), "ctx")

    with pytest.raises(DigestMismatch):
        verify_request("PUT", TARGET, signed_request(tpp_key), b"{}", resolve, now=NOW)

    assert calls == []


# --- Signature header presence --------------------------------------------------------------


def test_request_without_signature_header_is_refused(registry: Registry) -> None:
    with pytest.raises(MissingSignature) as caught:
        verify(base_headers(BODY), registry)

    assert caught.value.reason == "missing_signature"


def test_two_signature_headers_are_refused(tpp_key: RSAPrivateKey, registry: Registry) -> None:
    headers = signed_request(tpp_key)
    pairs = [*headers.items(), ("signature", headers["Signature"])]

    with pytest.raises(MalformedSignature):
        verify_request("PUT", TARGET, pairs, BODY, registry.get, now=NOW)


def test_every_refusal_is_a_signature_error_with_a_reason(
    tpp_key: RSAPrivateKey, registry: Registry
) -> None:
    headers = signed_request(tpp_key)
    headers["X-Request-ID"] = "other"

    with pytest.raises(SignatureError) as caught:
        verify(headers, registry)

    assert caught.value.reason == "bad_signature"
    assert "BadSignature" in repr(caught.value)
