"""The register request's HTTP signature (draft-cavage-12, STET form) and its QSealC checks.

Known-answer vector (computed outside stetgate with OpenSSL, see ``KAT_*`` below). Body::

    {"client_name":"KAT TPP","redirect_uris":["https://kat.example/cb"]}

``Digest`` (``openssl dgst -sha256 -binary body.json | base64``)::

    SHA-256=2Gtqb/R0zVYhgIQOyYmrnfmp0pPTWk8jvEjIT3M2YEs=

Signing string for ``headers="(request-target) digest x-request-id"``, lines joined by a
single ``\\n`` and no trailing newline::

    (request-target): post /stet/setting/v1/register
    digest: SHA-256=2Gtqb/R0zVYhgIQOyYmrnfmp0pPTWk8jvEjIT3M2YEs=
    x-request-id: 2f0c9a52-2b8e-4c59-9d61-0a2f3a1c7e11

Signature (``openssl dgst -sha256 -sign kat_key.pem signing_string.txt | base64``, RSASSA-PKCS1-v1_5
is deterministic, so the value is fixed for this key): ``KAT_SIGNATURE``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from stetgate.eidas import Psd2Certificate
from stetgate.eidas.validation import CertificateValidator
from stetgate.httpsig import sign_request
from stetgate.registry.errors import InvalidClientMetadata, InvalidSignature
from stetgate.registry.metadata_rules import SealKey, seal_key_of
from stetgate.registry.signed_requests import (
    require_trusted_seal,
    same_distinguished_name,
    verify_registration_signature,
)
from tests.support.pki import TppCerts
from tests.unit.registry.conftest import ORG_A, RegistryPki, psd2
from tests.unit.registry.register_requests import (
    REGISTER_TARGET,
    load_key,
    registration_document,
    signed_headers,
)

KAT_KEY_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCwRf7CVZN4Sxcf
4yAIgu6gom1QQ2dfDe0nZqDhYhYTczZiykH/7sX4cJB0z5GWde/37IIz5cJP4T0D
VtwQTdkKVXgHVP5hZRRpdZeumEYQma9IHiqYL/bUSy9rm3xW5i+whVIzJw0pciuz
BwbU4J1sjxt231hSJ0Bg8pqCYvVO7xSGeJx0kE1D8CgTvUOc+iyeq0puW3fT4f9/
IioqA99fQudhIqT3srdnQWYuuPgpSJgeRM3pIneW8QvRmkY7ma7cFXUxggIkqPel
V9X08cF72AXvn8w+YioAkp+G+YR88uIXCE4B/98/Q7hqufdgfktVCMjAqccMcG9n
NeRuSPN5AgMBAAECggEAJcQJTed5vecQoENQBKLQr1e9ZdnbFtFsAuoJA+C47Bfe
ChJdS5EDlzO+r1gdUAgajpp8VtQd6nFOWh3M7i1Pl9gx7Bg4m/NFCUcpZT24nSvg
Eupro8l674bgNQTOAew1QXN+5fiy6DNOy39w5kDtWWnbr38wdAF22I6Brfe3qN5S
cQZN1gWxCZjE4BP6GnVG1YKm4Q9egwQQ9qvDyDrRIjWV1IToBX5C4xH2kjLZl/xt
VIpmLeMrauPTB4ft6RlLWkPAnx36F2HP6Bt4s6a3LqPLvR1IKm0C0osqEBPb+dEQ
SqXVRjdEsXLiQDm4yq3FOoF92hiBMI7sqbzSqzvkBQKBgQDvbT5+1p4HE3x7Xj4J
twE6GXYhnsC6PnEEl0ncZ69kivbB7lvhtwqbjFHiAv7m6YdYOtzqLqzUeHOwPkaG
NSrzF2Mef7xLNbMls7iRDSwj2XXdKqOqCT+iZjSV4dpCNk0cTcRGhrZsK+tLB07U
72re/BlOIG5n0Ey3pnzyXqT2IwKBgQC8eaTnqV5RXESEaxf0et5upl0Gwhumn0ti
q6o9mvlGbdrsQGxuEFqmpt3pEMWTZPLMmx6edWOeO1QsIObgemeUAv6bRMAYYO6m
R2X37R/nvgF8DmyfNrMbgv5l6hQCMf1XKGGofYUEIxZuiPWXKF+U0XAepsCpzdBN
BuhzmcbTswKBgQC53ZiyZnFvFNWB//sxF3xAWhu2pcL/0hFyeu+/xk4GQ0qj6iIx
6yK09g1q4uB26btD5w4wTeOlXYyRuQaOkR+ybulnd8n4qMtV7VrOX+dwPRSeiMdc
7KkVrToNULNay0S5QDWqelGLT9zs9dNgwiu4xwPt/oc22CF2QCynCooM+QKBgC5L
qwgEgFh305S7QZ0Z+T0wvDUGxQf+pOPNyvlq8cQtA9N4V6oJdlrtLiErr3xvFXzQ
tYqyxw98/0X/pvaI2pxux9+X2Z+jX7uUWiW2J1ojP/YbDO9m3kPpv1eFUfjgEpyw
HJzoiB3mCIKKPdktX50MfP/qcfTDy2DAS6Tppv8lAoGBAJRShT/2zmEXTZ3YNrSM
IYkGgwt9JqopjtMD8ak5LuPmiUCxB7nqPjUwdFO6K2uU+OY7uJ68uS4dhcdDvMip
Y/xwAqQ8OkegHbkj6q5TFgWhYb1dm0EIdDSLFzF49rgsYqzPzn+SNTs5lpFd1u/v
ehaKdVgoOhAdTAwltv+atIar
-----END PRIVATE KEY-----
"""
"""A throwaway RSA-2048 key made for this vector only (``openssl genpkey``)."""
KAT_BODY = b'{"client_name":"KAT TPP","redirect_uris":["https://kat.example/cb"]}'
KAT_DIGEST = "SHA-256=2Gtqb/R0zVYhgIQOyYmrnfmp0pPTWk8jvEjIT3M2YEs="
KAT_REQUEST_ID = "2f0c9a52-2b8e-4c59-9d61-0a2f3a1c7e11"
KAT_SIGNING_STRING = (
    b"(request-target): post /stet/setting/v1/register\n"
    b"digest: SHA-256=2Gtqb/R0zVYhgIQOyYmrnfmp0pPTWk8jvEjIT3M2YEs=\n"
    b"x-request-id: 2f0c9a52-2b8e-4c59-9d61-0a2f3a1c7e11"
)
KAT_SIGNATURE = (
    "bd8FZal7rlI+10sodymD9vutKgWYkLJ0DK3fhQcWDe/x6AYt52ylKdRuDqqjsTDjv7IN+2Vk84yXJ06v5aWglcgU"
    "XLiWm7ITzkZ/AMxmTpPg7U+caDHVsesKdvArCl36tgX5EcjrAM+mNtbILeFsUJacDvPjF87YKj8to1WfsvQL2w44"
    "D8peOGcvhZiwUGi43bsc0fQJr0miWgtuj1n8TpNiFjxXsj8AY4PBPsQeDJIPLEtlU+86dDlUDYUKZf1IajslGtqU"
    "N1qgJVSJEcgfbJ5SY1ir3XfectZN8A105Z6PLBj3rZyz2JJxvEL45JlMdR7/qiQH7oNWbntDC99Ncw=="
)
KAT_SIGNATURE_HEADER = (
    'keyId="qsealc-1",algorithm="rsa-sha256",headers="(request-target) digest x-request-id",'
    f'signature="{KAT_SIGNATURE}"'
)
NOW = datetime.now(UTC)
"""For signature times only. Trust checks use the time of the test: the test CRL is published
by the session fixture, after this module is imported, and a CRL from the future is refused."""


@pytest.fixture(scope="module")
def kat_key() -> RSAPrivateKey:
    key = serialization.load_pem_private_key(KAT_KEY_PEM, password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def kat_tpp(registry_pki: RegistryPki, kat_key: RSAPrivateKey) -> TppCerts:
    return registry_pki.pki.issue(ORG_A, name="KAT TPP", qsealc_key=kat_key)


@pytest.fixture(scope="module")
def kat_seal(kat_tpp: TppCerts) -> SealKey:
    return seal_key_of(registration_document(kat_tpp.qsealc_pem))


@pytest.fixture(scope="module")
def seal_a(registry_pki: RegistryPki) -> SealKey:
    return seal_key_of(registration_document(registry_pki.tpp_a.qsealc_pem))


@pytest.fixture(scope="module")
def key_a(registry_pki: RegistryPki) -> RSAPrivateKey:
    return load_key(registry_pki.tpp_a.qsealc_key)


def trusted_seal(
    seal: SealKey, qwac: Psd2Certificate, validator: CertificateValidator, now: datetime
) -> Psd2Certificate:
    return asyncio.run(require_trusted_seal(seal, qwac, validator, now))


def kat_headers(**changes: str) -> dict[str, str]:
    headers = {
        "X-Request-ID": KAT_REQUEST_ID,
        "Digest": KAT_DIGEST,
        "Content-Type": "application/json",
        "Signature": KAT_SIGNATURE_HEADER,
    }
    headers.update(changes)
    return headers


def verify(
    headers: dict[str, str],
    seal: SealKey,
    body: bytes = KAT_BODY,
    target: str = REGISTER_TARGET,
    method: str = "POST",
    **kwargs: Any,
) -> str:
    return verify_registration_signature(
        method, target, headers, body, seal, now=kwargs.get("now", NOW), max_skew_seconds=300
    ).key_id


def reason_of(headers: dict[str, str], seal: SealKey, **kwargs: Any) -> str:
    with pytest.raises(InvalidSignature) as caught:
        verify(headers, seal, **kwargs)
    return caught.value.reason


# --------------------------------------------------------------------------- known answer


def test_known_answer_vector_is_self_consistent(kat_key: RSAPrivateKey) -> None:
    """The literals above agree with each other (digest of the body, signature over the
    signing string), independently of stetgate's code."""
    digest = base64.b64encode(hashlib.sha256(KAT_BODY).digest()).decode()
    assert f"SHA-256={digest}" == KAT_DIGEST
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = kat_key.sign(KAT_SIGNING_STRING, padding.PKCS1v15(), hashes.SHA256())
    assert base64.b64encode(signature).decode() == KAT_SIGNATURE


def test_known_answer_request_verifies(kat_seal: SealKey) -> None:
    assert verify(kat_headers(), kat_seal) == "qsealc-1"


def test_stetgate_signer_reproduces_the_known_answer(kat_key: RSAPrivateKey) -> None:
    headers = {"X-Request-ID": KAT_REQUEST_ID, "Digest": KAT_DIGEST}
    produced = sign_request(
        "POST",
        REGISTER_TARGET,
        headers,
        kat_key,
        "qsealc-1",
        ("(request-target)", "digest", "x-request-id"),
    )
    assert produced == KAT_SIGNATURE_HEADER


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"X-Request-ID": "2f0c9a52-2b8e-4c59-9d61-0a2f3a1c7e12"}, "bad_signature"),
        (
            {"Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(b"{}").digest()).decode()},
            "digest_mismatch",
        ),
        ({"Signature": KAT_SIGNATURE_HEADER.replace('"qsealc-1"', '"qsealc-2"')}, "unknown_key"),
        (
            {"Signature": KAT_SIGNATURE_HEADER.replace("rsa-sha256", "hmac-sha256")},
            "unsupported_algorithm",
        ),
        (
            {"Signature": KAT_SIGNATURE_HEADER.replace("rsa-sha256", "hs2019")},
            "unsupported_algorithm",
        ),
        (
            {"Signature": KAT_SIGNATURE_HEADER.replace("(request-target) ", "")},
            "missing_signed_header",
        ),
        ({"Signature": KAT_SIGNATURE_HEADER.replace(" x-request-id", "")}, "missing_signed_header"),
        ({"Signature": KAT_SIGNATURE_HEADER.replace(" digest", "")}, "missing_signed_header"),
        ({"Signature": "garbage"}, "malformed_signature"),
        ({"Digest": "MD5=abc"}, "malformed_digest"),
    ],
)
def test_a_changed_known_answer_request_is_refused(
    kat_seal: SealKey, changes: dict[str, str], reason: str
) -> None:
    assert reason_of(kat_headers(**changes), kat_seal) == reason


def test_a_changed_body_is_refused_by_its_digest(kat_seal: SealKey) -> None:
    assert (
        reason_of(kat_headers(), kat_seal, body=KAT_BODY.replace(b"KAT", b"KAU"))
        == "digest_mismatch"
    )


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("PUT", REGISTER_TARGET),
        ("POST", REGISTER_TARGET + "/abc"),
        ("POST", REGISTER_TARGET + "?x=1"),
    ],
)
def test_the_known_answer_signature_does_not_cover_another_request_target(
    kat_seal: SealKey, method: str, target: str
) -> None:
    assert reason_of(kat_headers(), kat_seal, method=method, target=target) == "bad_signature"


@pytest.mark.parametrize("header", ["Signature", "Digest"])
def test_signature_and_digest_are_required(kat_seal: SealKey, header: str) -> None:
    headers = kat_headers()
    del headers[header]
    assert reason_of(headers, kat_seal) == f"missing_{header.lower()}"


# --------------------------------------------------------------------------- keyId forms


def test_a_request_signed_by_another_key_under_the_right_kid_is_refused(
    seal_a: SealKey, registry_pki: RegistryPki
) -> None:
    other = load_key(registry_pki.tpp_b.qsealc_key)
    headers = signed_headers("POST", REGISTER_TARGET, KAT_BODY, other, "qsealc-1")
    assert reason_of(headers, seal_a) == "bad_signature"


def test_without_kid_the_key_id_is_the_certificate_thumbprint(
    registry_pki: RegistryPki, key_a: RSAPrivateKey
) -> None:
    seal = seal_key_of(registration_document(registry_pki.tpp_a.qsealc_pem, kid=None))
    thumbprint = seal.certificate.thumbprint_s256
    headers = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, thumbprint)
    assert verify(headers, seal) == thumbprint
    wrong = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, "qsealc-1")
    assert reason_of(wrong, seal) == "unknown_key"


def test_a_url_key_id_names_the_body_certificate_and_is_remembered_never_fetched(
    seal_a: SealKey, key_a: RSAPrivateKey
) -> None:
    url = "https://unreachable.invalid/certs/qsealc.pem"
    headers = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, url)
    signed = verify_registration_signature(
        "POST", REGISTER_TARGET, headers, KAT_BODY, seal_a, now=NOW, max_skew_seconds=300
    )
    assert signed.key_id == url
    assert signed.certificate_url == url


def test_a_url_key_id_must_match_the_x5u_the_key_declares(
    registry_pki: RegistryPki, key_a: RSAPrivateKey
) -> None:
    document = registration_document(registry_pki.tpp_a.qsealc_pem)
    document["jwks"]["keys"][0]["x5u"] = "https://tpp.example/qsealc.pem"
    seal = seal_key_of(document)
    good = signed_headers(
        "POST", REGISTER_TARGET, KAT_BODY, key_a, "https://tpp.example/qsealc.pem"
    )
    assert verify(good, seal) == "https://tpp.example/qsealc.pem"
    other = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, "https://evil.example/c")
    assert reason_of(other, seal) == "unknown_key"
    by_kid = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, "qsealc-1")
    signed = verify_registration_signature(
        "POST", REGISTER_TARGET, by_kid, KAT_BODY, seal, now=NOW, max_skew_seconds=300
    )
    assert signed.certificate_url == "https://tpp.example/qsealc.pem"


@pytest.mark.parametrize(
    "url", ["http://tpp.example/qsealc.pem", "https://tpp.example/" + "a" * 500]
)
def test_url_key_ids_must_be_short_https_urls(
    seal_a: SealKey, key_a: RSAPrivateKey, url: str
) -> None:
    headers = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, url)
    assert reason_of(headers, seal_a) == "unknown_key"


def test_a_serial_and_issuer_key_id_matches_in_any_rdn_order_and_case(
    seal_a: SealKey, key_a: RSAPrivateKey
) -> None:
    issuer = seal_a.x509.issuer
    reversed_dn = ",".join(reversed(issuer.rfc4514_string().split(","))).upper()
    key_id = f"SN={seal_a.x509.serial_number:X},CA={reversed_dn}"
    headers = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, key_id)
    assert verify(headers, seal_a) == key_id


@pytest.mark.parametrize(
    "key_id_of",
    [
        lambda cert: f"SN={cert.serial_number + 1:x},CA={cert.issuer.rfc4514_string()}",
        lambda cert: f"SN={cert.serial_number:x},CA=CN=Another QTSP,C=FR",
        lambda cert: f"SN={cert.serial_number:x},CA=not a dn",
        lambda cert: "SN=zz,CA=CN=x",
    ],
)
def test_a_serial_and_issuer_key_id_of_another_certificate_is_refused(
    seal_a: SealKey, key_a: RSAPrivateKey, key_id_of: Any
) -> None:
    headers = signed_headers("POST", REGISTER_TARGET, KAT_BODY, key_a, key_id_of(seal_a.x509))
    assert reason_of(headers, seal_a) == "unknown_key"


def test_a_signed_date_must_be_within_the_allowed_skew(
    seal_a: SealKey, key_a: RSAPrivateKey
) -> None:
    def with_date(when: datetime) -> dict[str, str]:
        headers = {
            "X-Request-ID": KAT_REQUEST_ID,
            "Date": format_datetime(when, usegmt=True),
            "Digest": KAT_DIGEST,
        }
        headers["Signature"] = sign_request(
            "POST",
            REGISTER_TARGET,
            headers,
            key_a,
            "qsealc-1",
            ("(request-target)", "date", "digest", "x-request-id"),
        )
        return headers

    assert verify(with_date(NOW - timedelta(seconds=200)), seal_a) == "qsealc-1"
    assert reason_of(with_date(NOW - timedelta(seconds=400)), seal_a) == "stale_date"


def test_same_distinguished_name_ignores_order_case_and_spacing() -> None:
    name = x509.Name.from_rfc4514_string("CN=Test QTSP Root CA,O=stetgate,C=FR")
    assert same_distinguished_name("C=FR, O=STETGATE, CN=test qtsp  root ca", name)
    assert not same_distinguished_name("C=FR,O=stetgate", name)
    assert not same_distinguished_name("CN=Test QTSP Root CA,O=stetgate,C=DE", name)
    assert not same_distinguished_name("=broken", name)


# --------------------------------------------------------------------------- trust


def test_a_valid_qsealc_of_the_qwac_organization_is_accepted(
    registry_pki: RegistryPki, validator: CertificateValidator, seal_a: SealKey
) -> None:
    qwac = psd2(registry_pki.tpp_a.qwac_pem)
    assert trusted_seal(seal_a, qwac, validator, datetime.now(UTC)) == seal_a.certificate


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("expired", "certificate_expired"),
        ("revoked", "certificate_revoked"),
        ("foreign", "unknown_issuer"),
        ("roleless", "role_absent"),
    ],
)
def test_unacceptable_qsealcs_are_invalid_client_metadata(
    registry_pki: RegistryPki, validator: CertificateValidator, which: str, reason: str
) -> None:
    tpp: TppCerts = getattr(registry_pki, which)
    seal = seal_key_of(registration_document(tpp.qsealc_pem))
    with pytest.raises(InvalidClientMetadata) as caught:
        trusted_seal(seal, psd2(registry_pki.tpp_a.qwac_pem), validator, datetime.now(UTC))
    assert caught.value.reason == reason
    assert "QSealC" in caught.value.description


def test_a_qwac_offered_as_the_seal_is_refused(
    registry_pki: RegistryPki, validator: CertificateValidator
) -> None:
    seal = seal_key_of(registration_document(registry_pki.tpp_a.qwac_pem))
    with pytest.raises(InvalidClientMetadata) as caught:
        trusted_seal(seal, psd2(registry_pki.tpp_a.qwac_pem), validator, datetime.now(UTC))
    assert caught.value.reason in ("wrong_certificate_type", "invalid_key_usage")


def test_a_qsealc_of_another_organization_is_refused(
    registry_pki: RegistryPki, validator: CertificateValidator
) -> None:
    seal_b = seal_key_of(registration_document(registry_pki.tpp_b.qsealc_pem))
    with pytest.raises(InvalidClientMetadata, match="same organization") as caught:
        trusted_seal(seal_b, psd2(registry_pki.tpp_a.qwac_pem), validator, datetime.now(UTC))
    assert caught.value.reason == "seal_organization_mismatch"
