"""The register API over real mutual TLS (BPCE "API register", RFC 7591/7592, RFC 8705 §3).

Every refused request is checked to leave the state tables (clients, certificates, tokens,
grants, codes) exactly as they were; the only row it may add is its own refusal in the audit
trail.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stetgate.httpsig import compute_digest
from stetgate.oauth.clients import get_client
from stetgate.registry.register import MAX_REGISTER_BODY_BYTES
from stetgate.secrets import secret_hash
from stetgate.store.audit_events import CLIENT_REGISTRATION_REFUSED, TOKEN_REFUSED
from stetgate.store.schema import audit_events, clients, service_tokens
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.unit.registry.db_snapshot import audit_events_after, last_audit_id, state_snapshot
from tests.unit.registry.register_client import (
    RegisteringTpp,
    client_path,
    module_bank,
    unique_name,
)
from tests.unit.registry.register_requests import REGISTER_TARGET, encode, seal_jwk

__all__ = ["module_bank"]

ORG_A = "PSDFR-ACPR-10001"
ORG_B = "PSDDE-BAFIN-20002"
REFUSALS = {CLIENT_REGISTRATION_REFUSED, TOKEN_REFUSED}
REQUEST_ID = "7d1c2b9e-6f0a-4e4b-9a57-3c2e1d0f9a88"


@pytest.fixture(scope="module")
def certs_a(pki: TestPki) -> TppCerts:
    return pki.issue(ORG_A, ("AISP", "CBPII"), "Register TPP A")


@pytest.fixture(scope="module")
def certs_b(pki: TestPki) -> TppCerts:
    return pki.issue(ORG_B, ("AISP",), "Register TPP B")


@pytest.fixture
def tpp(module_bank: RunningBank, certs_a: TppCerts) -> RegisteringTpp:
    return RegisteringTpp(module_bank, certs_a)


@pytest.fixture
def tpp_b(module_bank: RunningBank, certs_b: TppCerts) -> RegisteringTpp:
    return RegisteringTpp(module_bank, certs_b)


@contextmanager
def unchanged(bank: RunningBank) -> Iterator[None]:
    """The block changes no state; it may only add refusal rows to the audit trail."""
    engine = bank.services.engine
    before, last = state_snapshot(engine), last_audit_id(engine)
    yield
    assert state_snapshot(engine) == before
    assert {event for event, _ in audit_events_after(engine, last)} <= REFUSALS


def revoke(bank: RunningBank, pki: TestPki, pem: Path) -> None:
    """Revoke at the QTSP, then bring the bank's clock to the CRL's thisUpdate (a CRL from the
    bank's future would be refused as "too recent")."""
    pki.revoke(pem)
    bank.clock.set(max(bank.clock.now(), pki.clock.now() + timedelta(seconds=1)))


def assert_error(
    response: httpx.Response, status: int, error: str, request_id: str | None = REQUEST_ID
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body.get("error_description")
    assert response.headers["cache-control"] == "no-store"
    if request_id is not None:
        assert response.headers["x-request-id"] == request_id
    return body


# --------------------------------------------------------------------------- happy paths


@pytest.mark.postgres  # PostgreSQL smoke test of register POST/GET/PUT/DELETE
def test_a_tpp_registers_reads_updates_and_deletes_its_client(tpp: RegisteringTpp) -> None:
    bank = tpp.bank
    document = tpp.document(
        redirect_uris=["https://tpp-a.example/cb"],
        require_pkce=True,
        software_statement="ignored",
        logo_uri="https://x/logo.png",
    )
    created = tpp.register(document, request_id=REQUEST_ID)
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == REQUEST_ID
    assert created.headers["cache-control"] == "no-store"
    info = created.json()
    client_id, access = info["client_id"], info["registration_access_token"]
    assert info["registration_client_uri"] == f"{bank.base_url}{client_path(client_id)}"
    assert created.headers["location"] == info["registration_client_uri"]
    assert info["client_name"] == document["client_name"]
    assert info["redirect_uris"] == ["https://tpp-a.example/cb"]
    assert info["require_pkce"] is True
    assert info["token_endpoint_auth_method"] == "tls_client_auth"
    assert info["jwks"]["keys"][0]["x5c"] == document["jwks"]["keys"][0]["x5c"]
    assert "software_statement" not in info and "logo_uri" not in info
    with bank.services.engine.connect() as conn:
        row = (
            conn.execute(clients.select().where(clients.c.client_id == client_id)).mappings().one()
        )
    assert (row["org_id"], row["origin"]) == (ORG_A, "register")
    assert row["registration_token_hash"] == secret_hash(access)

    read = tpp.send("GET", client_path(client_id), bearer=access)
    assert read.status_code == 200
    assert {k: v for k, v in read.json().items()} == info

    new_document = tpp.document(
        client_name=info["client_name"],
        redirect_uris=["https://tpp-a.example/cb2"],
        contacts=["ops@tpp-a.example"],
        client_id=client_id,
    )
    updated = tpp.send("PUT", client_path(client_id), bearer=access, document=new_document)
    assert updated.status_code == 200, updated.text
    assert updated.json()["redirect_uris"] == ["https://tpp-a.example/cb2"]
    assert updated.json()["contacts"] == ["ops@tpp-a.example"]
    assert updated.json()["require_pkce"] is False
    with bank.services.engine.connect() as conn:
        stored = get_client(conn, client_id)
    assert stored is not None
    assert stored.redirect_uris == ("https://tpp-a.example/cb2",)
    assert stored.contacts == ("ops@tpp-a.example",) and stored.require_pkce is False

    deleted = tpp.send("DELETE", client_path(client_id), bearer=access, request_id=REQUEST_ID)
    assert deleted.status_code == 204
    assert deleted.headers["x-request-id"] == REQUEST_ID
    assert deleted.content == b""
    with bank.services.engine.connect() as conn:
        assert get_client(conn, client_id) is None
    gone = tpp.send("GET", client_path(client_id), bearer=access, request_id=REQUEST_ID)
    assert_error(gone, 401, "invalid_token")


def test_a_url_key_id_is_accepted_and_kept_as_the_certificate_url(tpp: RegisteringTpp) -> None:
    url = "https://certs.tpp-a.example/qsealc.pem"
    response = tpp.register(tpp.document(kid=None), key_id=url)
    assert response.status_code == 201, response.text
    assert response.json()["jwks"]["keys"][0]["x5u"] == url


# --------------------------------------------------------------------------- registration token


def test_the_registration_token_answer_has_no_refresh_token(tpp: RegisteringTpp) -> None:
    response = tpp.registration_token()
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "Bearer",
        600,
        "manageRegistration",
    )
    assert response.headers["cache-control"] == "no-store"
    with tpp.bank.services.engine.connect() as conn:
        row = (
            conn.execute(
                service_tokens.select().where(
                    service_tokens.c.access_hash == secret_hash(body["access_token"])
                )
            )
            .mappings()
            .one()
        )
    assert row["org_id"] == ORG_A


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"scope": "aisp"}, 400, "invalid_scope"),
        ({"scope": "manageRegistration cbpii"}, 400, "invalid_scope"),
        ({"client_id": "PSDFR-ACPR-10001"}, 401, "invalid_client"),
        ({"client_id": "unknown-client"}, 401, "invalid_client"),
        ({"client_id": ""}, 400, "invalid_request"),
    ],
)
def test_client_credentials_outside_the_registration_client_is_refused(
    tpp: RegisteringTpp, form: dict[str, Any], status: int, error: str
) -> None:
    with unchanged(tpp.bank):
        response = tpp.registration_token(**form)
    assert_error(response, status, error, request_id=None)


def test_client_credentials_for_a_registered_client_is_unauthorized_client(
    tpp: RegisteringTpp,
) -> None:
    client_id = tpp.registered()["client_id"]
    with unchanged(tpp.bank):
        response = tpp.registration_token(client_id=client_id)
    assert_error(response, 400, "unauthorized_client", request_id=None)


def test_a_qwac_without_psd2_role_gets_no_registration_token(
    tpp: RegisteringTpp, pki: TestPki
) -> None:
    roleless = pki.issue(ORG_A, (), "Roleless TPP")
    with unchanged(tpp.bank):
        response = tpp.registration_token(roleless)
    assert_error(response, 400, "unauthorized_client", request_id=None)


def test_a_revoked_qwac_gets_no_registration_token(tpp: RegisteringTpp, pki: TestPki) -> None:
    revoked = pki.issue(ORG_A, fresh=True)
    revoke(tpp.bank, pki, revoked.qwac_pem)
    with unchanged(tpp.bank):
        response = tpp.registration_token(revoked)
    body = assert_error(response, 401, "invalid_client", request_id=None)
    assert "revoked" in body["error_description"]


def test_no_registration_token_without_a_client_certificate(tpp: RegisteringTpp) -> None:
    with unchanged(tpp.bank), tpp.http(no_certificate=True) as client:
        response = client.post(
            "/stet/psd2/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "PSD2_TPPRegister",
                "scope": "manageRegistration",
            },
        )
    assert_error(response, 401, "invalid_client", request_id=None)


# --------------------------------------------------------------------------- bearer and mTLS


def test_no_bearer_token_is_401_with_a_bare_challenge(tpp: RegisteringTpp) -> None:
    with unchanged(tpp.bank):
        response = tpp.register(bearer="unused", request_id=REQUEST_ID, drop=["Authorization"])
    assert_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == 'Bearer realm="stetgate"'


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token", "Basic dXNlcjpwdw==", "Bearer", "Bearer a b"]
)
def test_an_unknown_or_malformed_bearer_token_is_401_invalid_token(
    tpp: RegisteringTpp, authorization: str
) -> None:
    with unchanged(tpp.bank):
        response = tpp.register(
            bearer="x", request_id=REQUEST_ID, headers={"Authorization": authorization}
        )
    assert_error(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_expired_registration_token_is_401(tpp: RegisteringTpp) -> None:
    token = tpp.new_registration_token()
    start = tpp.bank.clock.now()
    tpp.bank.clock.advance(600)
    try:
        with unchanged(tpp.bank):
            response = tpp.register(bearer=token, request_id=REQUEST_ID)
    finally:
        tpp.bank.clock.set(start)
    assert_error(response, 401, "invalid_token")


def test_a_registration_token_of_another_organization_is_403(
    tpp: RegisteringTpp, tpp_b: RegisteringTpp
) -> None:
    token_b = tpp_b.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token_b, request_id=REQUEST_ID)
    assert_error(response, 403, "access_denied")


def test_a_registration_token_is_bound_to_the_qwac_it_was_issued_to(
    tpp: RegisteringTpp, pki: TestPki
) -> None:
    token = tpp.new_registration_token()
    renewed = pki.issue(ORG_A, fresh=True)
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token, request_id=REQUEST_ID, certs=renewed)
    body = assert_error(response, 401, "invalid_token")
    assert "RFC 8705" in body["error_description"]


def test_a_registration_token_without_a_client_certificate_is_401(tpp: RegisteringTpp) -> None:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token, request_id=REQUEST_ID, no_certificate=True)
    body = assert_error(response, 401, "invalid_token")
    assert "mutual TLS" in body["error_description"]


# --------------------------------------------------------------------------- the request itself


def test_a_request_without_x_request_id_is_400(tpp: RegisteringTpp) -> None:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token, drop=["X-Request-ID"])
    assert_error(response, 400, "invalid_request", request_id=None)
    assert "x-request-id" not in response.headers


@pytest.mark.parametrize("value", ["has space", "x" * 101, "tab\there", ""])
def test_a_malformed_x_request_id_is_400_and_never_echoed_nor_stored(
    tpp: RegisteringTpp, value: str
) -> None:
    """docs/register-api.md: the id is echoed on every answer, so only a well-formed one
    (1-100 visible ASCII characters) is accepted; a malformed one is refused like a missing
    one and goes neither into the answer nor into the audit trail."""
    token = tpp.new_registration_token()
    engine = tpp.bank.services.engine
    last = last_audit_id(engine)
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token, headers={"X-Request-ID": value})
    body = assert_error(response, 400, "invalid_request", request_id=None)
    assert "x-request-id" not in response.headers
    assert "X-Request-ID" in body["error_description"]
    assert audit_events_after(engine, last) == [
        (CLIENT_REGISTRATION_REFUSED, "malformed_request_id")
    ]
    with engine.connect() as conn:
        stored = conn.execute(
            select(audit_events.c.request_id).where(audit_events.c.id > last)
        ).scalar_one()
    assert stored is None


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_a_body_that_is_not_json_is_415(tpp: RegisteringTpp, content_type: str) -> None:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(
            bearer=token, request_id=REQUEST_ID, headers={"Content-Type": content_type}
        )
    assert_error(response, 415, "invalid_request")


def test_a_body_over_the_register_limit_is_413_with_the_request_id(tpp: RegisteringTpp) -> None:
    token = tpp.new_registration_token()
    document = tpp.document(padding="x" * MAX_REGISTER_BODY_BYTES)
    with unchanged(tpp.bank):
        response = tpp.register(document, bearer=token, request_id=REQUEST_ID)
    assert_error(response, 413, "invalid_request")


def test_a_body_over_the_server_limit_is_413(tpp: RegisteringTpp) -> None:
    token = tpp.new_registration_token()
    document = tpp.document(padding="x" * (tpp.bank.settings.max_body_bytes + 1))
    with unchanged(tpp.bank):
        response = tpp.register(document, bearer=token, request_id=REQUEST_ID)
    assert response.status_code == 413


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"client_name":"a","client_name":"b"}'])
def test_a_signed_body_that_is_not_one_json_object_is_400(tpp: RegisteringTpp, body: bytes) -> None:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.send("POST", REGISTER_TARGET, bearer=token, body=body, request_id=REQUEST_ID)
    assert_error(response, 400, "invalid_request")


# --------------------------------------------------------------------------- signature, digest


def tampered_digest() -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(b"other").digest()).decode()


@pytest.mark.parametrize(
    ("change", "reason_text"),
    [
        ({"drop": ["Signature"]}, "no Signature"),
        ({"drop": ["Digest"]}, "Digest"),
        ({"headers": {"Digest": "SHA-256=" + base64.b64encode(b"x" * 32).decode()}}, "Digest"),
        ({"headers": {"X-Request-ID": "changed-after-signing"}}, "does not verify"),
        ({"signed": ("(request-target)", "digest")}, "x-request-id"),
        ({"signed": ("digest", "x-request-id")}, "(request-target)"),
        ({"signed": ("(request-target)", "x-request-id")}, "digest"),
        ({"key_id": "another-kid"}, "keyId"),
        ({"key_id": "http://certs.example/qsealc.pem"}, "https"),
    ],
)
def test_a_missing_or_bad_signature_or_digest_is_401_with_a_description(
    tpp: RegisteringTpp, change: dict[str, Any], reason_text: str
) -> None:
    token = tpp.new_registration_token()
    change = dict(change)
    headers = change.pop("headers", {})
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token, request_id=REQUEST_ID, headers=headers, **change)
    body = assert_error(
        response, 401, "invalid_signature", request_id=headers.get("X-Request-ID", REQUEST_ID)
    )
    assert reason_text in body["error_description"]


def test_a_request_signed_by_another_key_than_the_body_qsealc_is_401(
    tpp: RegisteringTpp, certs_b: TppCerts
) -> None:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(bearer=token, request_id=REQUEST_ID, seal_key=certs_b.qsealc_key)
    assert_error(response, 401, "invalid_signature")


def test_a_body_changed_after_signing_is_401(tpp: RegisteringTpp) -> None:
    token = tpp.new_registration_token()
    document = tpp.document()
    signed_body = encode(document)
    document["redirect_uris"] = ["https://attacker.example/cb"]
    with unchanged(tpp.bank):
        response = tpp.send(
            "POST",
            REGISTER_TARGET,
            bearer=token,
            document=document,
            request_id=REQUEST_ID,
            headers={"Digest": compute_digest(signed_body)},
        )
    body = assert_error(response, 401, "invalid_signature")
    assert "Digest" in body["error_description"]


# --------------------------------------------------------------------------- QSealC trust


@pytest.mark.parametrize(
    ("which", "reason_text"),
    [
        ("expired", "expired"),
        ("revoked", "revoked"),
        ("foreign", "trusted"),
        ("other_org", "same organization"),
        ("qwac_as_seal", "QSealC"),
    ],
)
def test_an_unacceptable_qsealc_is_400_invalid_client_metadata(
    tpp: RegisteringTpp, pki: TestPki, certs_b: TppCerts, which: str, reason_text: str
) -> None:
    if which == "expired":
        past = tpp.bank.clock.now() - timedelta(days=400)  # expired on the bank's clock
        seal = pki.issue(ORG_A, not_before=past, not_after=past + timedelta(days=30))
    elif which == "revoked":
        seal = pki.issue(ORG_A, fresh=True)
        revoke(tpp.bank, pki, seal.qsealc_pem)
    elif which == "foreign":
        seal = pki.issue(ORG_A, foreign=True)
    elif which == "other_org":
        seal = certs_b
    else:
        seal = tpp.certs
    token = tpp.new_registration_token()
    seal_pem = seal.qwac_pem if which == "qwac_as_seal" else seal.qsealc_pem
    seal_key = seal.qwac_key if which == "qwac_as_seal" else seal.qsealc_key
    document = tpp.document()
    document["jwks"] = {"keys": [seal_jwk(seal_pem)]}
    with unchanged(tpp.bank):
        response = tpp.register(document, bearer=token, request_id=REQUEST_ID, seal_key=seal_key)
    body = assert_error(response, 400, "invalid_client_metadata")
    assert reason_text in body["error_description"]


def test_a_jwk_whose_key_is_not_the_certificates_is_400(
    tpp: RegisteringTpp, certs_b: TppCerts
) -> None:
    token = tpp.new_registration_token()
    document = tpp.document()
    document["jwks"]["keys"][0]["n"] = seal_jwk(certs_b.qsealc_pem)["n"]
    with unchanged(tpp.bank):
        response = tpp.register(document, bearer=token, request_id=REQUEST_ID)
    assert_error(response, 400, "invalid_client_metadata")


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "uri",
    [
        "http://tpp-a.example/cb",
        "https://tpp-a.example/cb#top",
        "https://*.tpp-a.example/cb",
        "tpp-a.example/cb",
    ],
)
def test_a_redirect_uri_that_is_not_https_or_has_a_fragment_is_400(
    tpp: RegisteringTpp, uri: str
) -> None:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(
            tpp.document(redirect_uris=["https://ok.example/cb", uri]),
            bearer=token,
            request_id=REQUEST_ID,
        )
    assert_error(response, 400, "invalid_redirect_uri")


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uris": None},
        {"client_name": None},
        {"token_endpoint_auth_method": "client_secret_basic"},
        {"grant_types": ["implicit"]},
        {"response_types": ["token"]},
        {"jwks": None},
        {"contacts": "ops@tpp.example"},
    ],
)
def test_invalid_metadata_is_400(tpp: RegisteringTpp, overrides: dict[str, Any]) -> None:
    token = tpp.new_registration_token()
    document = tpp.document(**overrides)
    expected = "invalid_redirect_uri" if "redirect_uris" in overrides else "invalid_client_metadata"
    with unchanged(tpp.bank):
        response = tpp.register(document, bearer=token, request_id=REQUEST_ID)
    assert_error(response, 400, expected)


def test_a_client_name_already_registered_is_400(
    tpp: RegisteringTpp, tpp_b: RegisteringTpp
) -> None:
    name = unique_name("Shown To PSUs")
    tpp_b.registered(client_name=name)
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        response = tpp.register(
            tpp.document(client_name=name.upper()), bearer=token, request_id=REQUEST_ID
        )
    body = assert_error(response, 400, "invalid_client_metadata")
    assert "already registered" in body["error_description"]


# --------------------------------------------------------------------------- management


@pytest.fixture
def registration(tpp: RegisteringTpp) -> dict[str, Any]:
    return tpp.registered()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_managing_with_the_registration_token_instead_of_the_access_token_is_401(
    tpp: RegisteringTpp, registration: dict[str, Any], method: str
) -> None:
    token = tpp.new_registration_token()
    document = tpp.document(client_name=registration["client_name"])
    with unchanged(tpp.bank):
        response = tpp.send(
            method,
            client_path(registration["client_id"]),
            bearer=token,
            document=document if method == "PUT" else None,
            request_id=REQUEST_ID,
        )
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_the_access_token_of_one_client_does_not_open_another(
    tpp: RegisteringTpp, registration: dict[str, Any], method: str
) -> None:
    other = tpp.registered()
    document = tpp.document(client_name=other["client_name"])
    with unchanged(tpp.bank):
        response = tpp.send(
            method,
            client_path(other["client_id"]),
            bearer=registration["registration_access_token"],
            document=document if method == "PUT" else None,
            request_id=REQUEST_ID,
        )
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_another_organization_cannot_touch_a_registration(
    tpp: RegisteringTpp, tpp_b: RegisteringTpp, registration: dict[str, Any], method: str
) -> None:
    document = tpp_b.document(client_name=registration["client_name"])
    with unchanged(tpp.bank):
        response = tpp_b.send(
            method,
            client_path(registration["client_id"]),
            bearer=registration["registration_access_token"],
            document=document if method == "PUT" else None,
            request_id=REQUEST_ID,
        )
    assert_error(response, 403, "access_denied")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_managing_without_a_client_certificate_is_401(
    tpp: RegisteringTpp, registration: dict[str, Any], method: str
) -> None:
    document = tpp.document(client_name=registration["client_name"])
    with unchanged(tpp.bank):
        response = tpp.send(
            method,
            client_path(registration["client_id"]),
            bearer=registration["registration_access_token"],
            document=document if method == "PUT" else None,
            request_id=REQUEST_ID,
            no_certificate=True,
        )
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"drop": ["Signature"]}, 401, "invalid_signature"),
        ({"headers": {"Digest": tampered_digest()}}, 401, "invalid_signature"),
        ({"document_changes": {"client_id": "someone-else"}}, 400, "invalid_client_metadata"),
        (
            {"document_changes": {"redirect_uris": ["http://tpp-a.example/cb"]}},
            400,
            "invalid_redirect_uri",
        ),
        ({"other_org_seal": True}, 400, "invalid_client_metadata"),
    ],
)
def test_a_bad_update_is_refused_and_changes_nothing(
    tpp: RegisteringTpp,
    registration: dict[str, Any],
    certs_b: TppCerts,
    change: dict[str, Any],
    status: int,
    error: str,
) -> None:
    document = tpp.document(
        client_name=registration["client_name"], **change.get("document_changes", {})
    )
    kwargs: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "headers": change.get("headers", {}),
        "drop": change.get("drop", ()),
    }
    if change.get("other_org_seal"):
        document["jwks"] = {"keys": [seal_jwk(certs_b.qsealc_pem)]}
        kwargs["seal_key"] = certs_b.qsealc_key
    with unchanged(tpp.bank):
        response = tpp.send(
            "PUT",
            client_path(registration["client_id"]),
            bearer=registration["registration_access_token"],
            document=document,
            **kwargs,
        )
    assert_error(response, status, error)


def test_an_update_to_another_clients_name_is_400(
    tpp: RegisteringTpp, registration: dict[str, Any]
) -> None:
    other = tpp.registered()
    document = tpp.document(client_name=other["client_name"])
    with unchanged(tpp.bank):
        response = tpp.send(
            "PUT",
            client_path(registration["client_id"]),
            bearer=registration["registration_access_token"],
            document=document,
            request_id=REQUEST_ID,
        )
    assert_error(response, 400, "invalid_client_metadata")


def test_other_methods_are_405(tpp: RegisteringTpp, registration: dict[str, Any]) -> None:
    with unchanged(tpp.bank), tpp.http() as client:
        assert client.patch(client_path(registration["client_id"])).status_code == 405
        assert client.get(REGISTER_TARGET).status_code == 405


# --------------------------------------------------------------------------- the TPP guide


def test_the_python_example_of_the_tpp_guide_registers(
    module_bank: RunningBank, pki: TestPki, certs_a: TppCerts
) -> None:
    """docs/register-api.md must stay true: run its example as a TPP would."""
    guide = (Path(__file__).parents[2] / "docs" / "register-api.md").read_text()
    code = guide.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/register-api.md", "exec"), namespace)
    name = unique_name("Guide")
    info = namespace["register"](
        module_bank.base_url,
        str(pki.ca_pem),
        str(certs_a.qwac_pem),
        str(certs_a.qwac_key),
        str(certs_a.qsealc_pem),
        str(certs_a.qsealc_key),
        name,
        "https://guide.example/cb",
    )
    assert info["client_name"] == name
    assert info["redirect_uris"] == ["https://guide.example/cb"]
    assert info["registration_access_token"]
