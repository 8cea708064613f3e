"""Client metadata rules (RFC 7591 §2, RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 7517 §4.7)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from stetgate.registry.errors import InvalidClientMetadata, InvalidRedirectUri, InvalidRequest
from stetgate.registry.metadata_rules import (
    client_metadata_of,
    contacts_of,
    parse_json_object,
    seal_key_of,
)
from tests.unit.registry.conftest import ORG_A, RegistryPki, psd2
from tests.unit.registry.register_requests import registration_document, seal_jwk


@pytest.fixture(scope="module")
def document(registry_pki: RegistryPki) -> dict[str, Any]:
    return registration_document(registry_pki.tpp_a.qsealc_pem)


def with_changes(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    for name, value in changes.items():
        if value is None:
            copy.pop(name, None)
        else:
            copy[name] = value
    return copy


def with_jwk(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copy = with_changes(document)
    jwk = copy["jwks"]["keys"][0]
    for name, value in changes.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return copy


# --------------------------------------------------------------------------- whole documents


def test_a_bpce_style_registration_is_accepted_with_its_values(document: dict[str, Any]) -> None:
    metadata = client_metadata_of(document)
    assert metadata.client_name == "Budget Insight Test"
    assert metadata.redirect_uris == ("https://tpp.example/callback",)
    assert metadata.grant_types == ("authorization_code", "refresh_token")
    assert metadata.response_types == ("code",)
    assert metadata.contacts == ("psd2@tpp.example",)
    assert metadata.require_pkce is False
    assert metadata.token_endpoint_auth_method == "tls_client_auth"


def test_unknown_fields_are_ignored(document: dict[str, Any]) -> None:
    changed = with_changes(
        document,
        software_statement="eyJ...",
        logo_uri="https://x/l.png",
        tls_client_auth_subject_dn="CN=x",
    )
    assert client_metadata_of(changed) == client_metadata_of(document)


def test_rfc7591_defaults_apply_when_grant_and_response_types_are_absent(
    document: dict[str, Any],
) -> None:
    metadata = client_metadata_of(
        with_changes(document, grant_types=None, response_types=None, contacts=None)
    )
    assert metadata.grant_types == ("authorization_code",)
    assert metadata.response_types == ("code",)
    assert metadata.contacts == ()


def test_require_pkce_true_is_kept(document: dict[str, Any]) -> None:
    assert client_metadata_of(with_changes(document, require_pkce=True)).require_pkce is True


@pytest.mark.parametrize("value", ["true", 1, [True]])
def test_require_pkce_must_be_a_boolean(document: dict[str, Any], value: Any) -> None:
    with pytest.raises(InvalidClientMetadata, match="require_pkce"):
        client_metadata_of(with_changes(document, require_pkce=value))


@pytest.mark.parametrize(
    "method",
    [
        None,
        "client_secret_basic",
        "private_key_jwt",
        "self_signed_tls_client_auth",
        "TLS_CLIENT_AUTH",
    ],
)
def test_token_endpoint_auth_method_must_be_tls_client_auth(
    document: dict[str, Any], method: str | None
) -> None:
    with pytest.raises(InvalidClientMetadata, match="tls_client_auth"):
        client_metadata_of(with_changes(document, token_endpoint_auth_method=method))


@pytest.mark.parametrize(
    "grant_types", [["implicit"], ["password"], ["authorization_code", 3], "authorization_code"]
)
def test_unsupported_or_malformed_grant_types_are_refused(
    document: dict[str, Any], grant_types: Any
) -> None:
    with pytest.raises(InvalidClientMetadata, match="grant_types"):
        client_metadata_of(with_changes(document, grant_types=grant_types))


@pytest.mark.parametrize("response_types", [["token"], ["code", "id_token"], ["code token"]])
def test_only_the_code_response_type_is_supported(
    document: dict[str, Any], response_types: list[str]
) -> None:
    with pytest.raises(InvalidClientMetadata, match="response_types"):
        client_metadata_of(with_changes(document, response_types=response_types))


def test_code_response_type_without_authorization_code_grant_is_inconsistent(
    document: dict[str, Any],
) -> None:
    with pytest.raises(InvalidClientMetadata, match="go together"):
        client_metadata_of(with_changes(document, grant_types=["client_credentials"]))


def test_client_credentials_only_client_without_response_types_is_consistent(
    document: dict[str, Any],
) -> None:
    metadata = client_metadata_of(
        with_changes(document, grant_types=["client_credentials"], response_types=[])
    )
    assert metadata.grant_types == ("client_credentials",)


# --------------------------------------------------------------------------- redirect URIs


def test_a_document_with_a_bad_redirect_uri_is_refused_as_invalid_redirect_uri(
    document: dict[str, Any],
) -> None:
    bad = with_changes(document, redirect_uris=["https://ok.example/cb", "http://tpp.example/"])
    with pytest.raises(InvalidRedirectUri):
        client_metadata_of(bad)


# --------------------------------------------------------------------------- names, contacts


@pytest.mark.parametrize(
    "value", ["psd2@tpp.example", ["not-an-email"], ["a@b@c"], ["x@y"] * 11, [None]]
)
def test_contacts_must_be_a_short_list_of_email_addresses(value: Any) -> None:
    with pytest.raises(InvalidClientMetadata, match="contact"):
        contacts_of(value)


def test_contacts_keep_order_without_duplicates() -> None:
    assert contacts_of(["b@x.fr", "a@x.fr", "b@x.fr"]) == ("b@x.fr", "a@x.fr")


# --------------------------------------------------------------------------- JSON body


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"client_name": "A", "client_name": "B"}', "appears twice"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'["a"]', "JSON object"),
        (b'"text"', "JSON object"),
    ],
)
def test_bodies_that_are_not_one_unambiguous_json_object_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(InvalidRequest, match=why):
        parse_json_object(body)


def test_a_json_object_is_returned_as_a_dict() -> None:
    assert parse_json_object(b'{"client_name": "A", "n": null}') == {"client_name": "A", "n": None}


# --------------------------------------------------------------------------- jwks / QSealC


def test_the_seal_key_is_read_from_jwks_keys_0(
    document: dict[str, Any], registry_pki: RegistryPki
) -> None:
    seal = seal_key_of(document)
    assert seal.certificate.organization_identifier == ORG_A
    assert seal.certificate == psd2(registry_pki.tpp_a.qsealc_pem)
    assert seal.kid == "qsealc-1"
    assert seal.effective_kid == "qsealc-1"
    assert seal.x5u is None


@pytest.mark.parametrize(
    "kid",
    [
        "SN=1A2B,CA=CN=Test QTSP, O=Example, C=FR",
        "https://tpp.example/qsealc.pem",
        "seal 2026",
        "k" * 200,
    ],
)
def test_any_printable_kid_is_accepted(document: dict[str, Any], kid: str) -> None:
    """RFC 7517 §4.5: a kid is any string; TPPs reuse their Signature keyId (an outside run
    found the SN=…,CA=… form refused)."""
    assert seal_key_of(with_jwk(document, kid=kid)).kid == kid


def test_without_kid_the_certificate_thumbprint_is_the_kid(document: dict[str, Any]) -> None:
    seal = seal_key_of(with_jwk(document, kid=None))
    assert seal.kid is None
    assert seal.effective_kid == seal.certificate.thumbprint_s256


def test_further_keys_and_chain_certificates_are_accepted_and_unused(
    document: dict[str, Any], registry_pki: RegistryPki
) -> None:
    changed = with_changes(document)
    qwac_jwk = seal_jwk(registry_pki.tpp_a.qwac_pem, kid="qwac")
    changed["jwks"]["keys"].append(qwac_jwk)
    changed["jwks"]["keys"][0]["x5c"].append(qwac_jwk["x5c"][0])
    assert seal_key_of(changed).certificate == seal_key_of(document).certificate


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"kty": "EC"}, "kty"),
        ({"kty": None}, "kty"),
        ({"use": "enc"}, "use"),
        ({"use": None}, "use"),
        ({"alg": "PS256"}, "alg"),
        ({"alg": "none"}, "alg"),
        ({"x5c": None}, "x5c"),
        ({"x5c": []}, "x5c"),
        ({"x5c": "MIIB"}, "x5c"),
        ({"x5c": ["not base64!"]}, "standard base64"),
        ({"x5c": [base64.b64encode(b"not a certificate").decode()]}, "not a PSD2 certificate"),
        ({"n": None}, "n/e"),
        ({"e": "AQAA"}, "n/e"),
        ({"n": "AQAB"}, "n/e"),
        ({"kid": 'quo"te'}, "kid"),
        ({"kid": "back\\slash"}, "kid"),
        ({"kid": " leading"}, "kid"),
        ({"kid": "trailing "}, "kid"),
        ({"kid": ""}, "kid"),
        ({"kid": "caf\u00e9"}, "kid"),
        ({"kid": "line\nbreak"}, "kid"),
        ({"kid": "k" * 201}, "kid"),
        ({"kid": 12}, "kid"),
        ({"x5u": "http://tpp.example/qsealc.pem"}, "x5u"),
        ({"x5u": "https://tpp.example/" + "a" * 500}, "x5u"),
    ],
)
def test_a_first_jwk_that_is_not_an_rsa_signing_qsealc_is_refused(
    document: dict[str, Any], changes: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidClientMetadata, match=why):
        seal_key_of(with_jwk(document, **changes))


def test_the_jwk_key_must_be_the_certificates_key(
    document: dict[str, Any], registry_pki: RegistryPki
) -> None:
    other = seal_jwk(registry_pki.tpp_b.qsealc_pem)
    with pytest.raises(InvalidClientMetadata, match="public key of the certificate"):
        seal_key_of(with_jwk(document, n=other["n"]))


def test_a_certificate_without_psd2_statement_is_not_a_seal(
    document: dict[str, Any], registry_pki: RegistryPki
) -> None:
    plain = registry_pki.pki.server_pem.read_bytes()
    der = x509.load_pem_x509_certificate(plain).public_bytes(Encoding.DER)
    with pytest.raises(InvalidClientMetadata, match="not a PSD2 certificate") as caught:
        seal_key_of(with_jwk(document, x5c=[base64.b64encode(der).decode()]))
    assert caught.value.reason == "missing_organization_identifier"


@pytest.mark.parametrize(
    "jwks", [None, "keys", {"keys": []}, {"keys": "x"}, {"keys": [1]}, {"keys": [{}] * 11}]
)
def test_jwks_must_hold_a_list_of_keys(document: dict[str, Any], jwks: Any) -> None:
    with pytest.raises(InvalidClientMetadata, match="jwks"):
        seal_key_of(with_changes(document, jwks=jwks))
