"""Attack matrix, RFC 8705 (OAuth 2.0 Mutual-TLS Client Authentication and Certificate-Bound
Access Tokens) with eIDAS QWACs (ETSI TS 119 495): the token endpoint authenticates the TPP by
its QWAC only (§2), access tokens are bound to the QWAC's SHA-256 thumbprint (§3, ``cnf``
``x5t#S256``), and the certificate must be trusted, valid, unrevoked, a QWAC (not a QSealC)
and carry the PSD2 role the scope needs (PSP_AI for ``aisp``, PSP_IC for ``cbpii``).

One seeded bank serves the module (`tests.integration.psd2_support.build_world`): the token
endpoint and the STET resource API over real TLS with test-QTSP certificates.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from stetgate.eidas import parse_certificate
from stetgate.oauth.clients import Client
from tests.integration.psd2_support import ApiWorld, Signer, Tpp, register_client
from tests.integration.test_psd2_api import assert_error
from tests.security.matrix import token_refused, unchanged
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import (
    TOKEN,
    add_client,
    exchange_form,
    introspect,
    new_code,
    obtain_pair,
    refresh_form,
    revoke_certificate,
)

ORG = "PSDFR-ACPR-71001"
OTHER_ORG = "PSDFR-ACPR-71002"


@pytest.fixture(scope="module")
def token_client(world: ApiWorld, pki: TestPki) -> tuple[TppCerts, Client]:
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    return tpp, add_client(world.engine, tpp, world.clock.now())


def _code_form(api: ApiWorld, client: Client, scope: str = "aisp") -> dict[str, str]:
    return exchange_form(client, new_code(api.engine, client, api.clock.now(), scope=scope))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "self-signed TPP"),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, ORG),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem, key_pem = directory / "self.pem", directory / "self.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, key_pem


# --- §2 the token endpoint authenticates with the QWAC only -------------------------------------
def test_token_request_without_a_client_certificate_is_invalid_client_401(
    api: ApiWorld, token_client: tuple[TppCerts, Client]
) -> None:
    _, client = token_client
    token_refused(api.bank, None, _code_form(api, client), "invalid_client", 401)


def test_token_request_with_another_organizations_qwac_is_invalid_client_401(
    api: ApiWorld, pki: TestPki, token_client: tuple[TppCerts, Client]
) -> None:
    _, client = token_client
    other = pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    body = token_refused(api.bank, other, _code_form(api, client), "invalid_client", 401)
    assert OTHER_ORG in body["error_description"]


def test_token_request_with_a_revoked_qwac_is_invalid_client_401(
    api: ApiWorld, pki: TestPki
) -> None:
    revoked = pki.issue("PSDFR-ACPR-71003", ("AISP",), fresh=True)
    client = add_client(api.engine, revoked, api.clock.now())
    form = _code_form(api, client)
    revoke_certificate(api.bank, revoked)
    body = token_refused(api.bank, revoked, form, "invalid_client", 401)
    assert body["error_description"].startswith("certificate revoked")


def test_token_request_with_an_expired_qwac_is_invalid_client_401(
    api: ApiWorld, pki: TestPki
) -> None:
    """Expiry is judged on the bank's clock: the certificate expired a day ago for it."""
    now = api.clock.now()
    short = pki.issue(
        "PSDFR-ACPR-71004",
        ("AISP",),
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=1),
    )
    client = add_client(api.engine, short, now)
    api.clock.advance(dt.timedelta(days=2).total_seconds())
    form = _code_form(api, client)
    body = token_refused(api.bank, short, form, "invalid_client", 401)
    assert "expired" in body["error_description"]


def test_self_signed_client_certificate_is_refused_at_the_tls_handshake(
    api: ApiWorld, token_client: tuple[TppCerts, Client], tmp_path: Path
) -> None:
    _, client = token_client
    form = _code_form(api, client)
    with (
        unchanged(api.bank),
        api.bank.client(cert=_self_signed(tmp_path)) as http,
        pytest.raises(httpx.TransportError),
    ):
        http.post(TOKEN, data=form)


def test_qwac_of_an_unknown_ca_is_refused_at_the_tls_handshake(
    api: ApiWorld, pki: TestPki, token_client: tuple[TppCerts, Client]
) -> None:
    _, client = token_client
    foreign = pki.issue(ORG, ("AISP", "CBPII"), foreign=True)
    form = _code_form(api, client)
    with unchanged(api.bank), api.bank.client(foreign) as http, pytest.raises(httpx.TransportError):
        http.post(TOKEN, data=form)


def test_qsealc_presented_as_the_tls_client_certificate_is_refused(
    api: ApiWorld, token_client: tuple[TppCerts, Client]
) -> None:
    """QWAC/QSealC misuse: a seal certificate (QcType eseal) does not authenticate a TLS
    client; the QcType web statement is what makes a QWAC (ETSI EN 319 412-5 §4.2.3)."""
    tpp, client = token_client
    form = _code_form(api, client)
    with unchanged(api.bank), api.bank.client(cert=(tpp.qsealc_pem, tpp.qsealc_key)) as http:
        response = http.post(TOKEN, data=form)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "not a QWAC" in response.json()["error_description"]


def test_cbpii_only_certificate_asking_for_aisp_is_unauthorized_client(
    api: ApiWorld, pki: TestPki
) -> None:
    """PSP_IC is not PSP_AI: a CBPII-only TPP cannot obtain an AISP token."""
    ic_only = pki.issue("PSDFR-ACPR-71005", ("CBPII",))
    client = add_client(api.engine, ic_only, api.clock.now())
    body = token_refused(api.bank, ic_only, _code_form(api, client), "unauthorized_client")
    assert "PSP_AI" in body["error_description"]


def test_aisp_only_certificate_asking_for_cbpii_is_unauthorized_client(
    api: ApiWorld, pki: TestPki
) -> None:
    ai_only = pki.issue("PSDFR-ACPR-71006", ("AISP",))
    client = add_client(api.engine, ai_only, api.clock.now())
    form = _code_form(api, client, scope="cbpii")
    body = token_refused(api.bank, ai_only, form, "unauthorized_client")
    assert "PSP_IC" in body["error_description"]


def test_refresh_with_another_organizations_qwac_is_invalid_client_401(
    api: ApiWorld, pki: TestPki, token_client: tuple[TppCerts, Client]
) -> None:
    tpp, client = token_client
    pair = obtain_pair(api.bank, tpp, client)
    other = pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    token_refused(
        api.bank, other, refresh_form(client, pair["refresh_token"]), "invalid_client", 401
    )


# --- §3 certificate-bound access tokens ------------------------------------------------------
def test_issued_access_token_is_bound_to_the_qwac_thumbprint(
    api: ApiWorld, token_client: tuple[TppCerts, Client]
) -> None:
    """A stolen token is only usable with the private key: ``cnf.x5t#S256`` is the QWAC's."""
    tpp, client = token_client
    pair = obtain_pair(api.bank, tpp, client)
    thumbprint = parse_certificate(tpp.qwac_pem.read_bytes()).thumbprint_s256
    assert introspect(api.bank, tpp, token=pair["access_token"])["cnf"] == {"x5t#S256": thumbprint}


@pytest.fixture(scope="module")
def thief(world: ApiWorld, pki: TestPki) -> TppCerts:
    certs = pki.issue("PSDFR-ACPR-71008", ("AISP", "CBPII"))
    register_client(world.engine, certs, world.clock.now())
    return certs


def test_access_token_used_over_another_organizations_qwac_is_401_invalid_token(
    api: ApiWorld, thief: TppCerts
) -> None:
    """The thief is a registered TPP signing with its own QSealC: only the binding stops it."""
    token = api.token("jdupont")
    response = api.tpp(thief).get("accounts", token=token)
    assert_error(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_access_token_used_over_another_qwac_of_the_same_organization_is_401(
    api: ApiWorld, pki: TestPki
) -> None:
    token = api.token("jdupont")
    second = pki.issue(api.tpp_certs.org_id, ("AISP", "CBPII"), fresh=True)
    response = api.tpp(second, signer=Signer.of(api.tpp_certs)).get("accounts", token=token)
    assert "another client certificate" in assert_error(response, 401)["message"]


def test_resource_call_without_a_client_certificate_is_401(api: ApiWorld) -> None:
    token = api.token("jdupont")
    with api.bank.client(None) as http:
        response = Tpp(http, Signer.of(api.tpp_certs), api.clock).get("accounts", token=token)
        assert "client certificate" in assert_error(response, 401)["message"]


def test_resource_call_with_a_revoked_qwac_is_401(api: ApiWorld, pki: TestPki) -> None:
    certs = pki.issue("PSDFR-ACPR-71007", ("AISP",), fresh=True)
    register_client(api.engine, certs, api.clock.now())
    token = api.token("jdupont", certs=certs, client_id=certs.org_id)
    tpp = api.tpp(certs)
    assert tpp.get("accounts", token=token).status_code == 200
    pki.revoke(certs.qwac_pem)
    api.clock.set(max(api.clock.now(), pki.clock.now() + dt.timedelta(seconds=1)))
    assert "revoked" in assert_error(tpp.get("accounts", token=token), 401)["message"]
