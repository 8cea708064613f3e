"""A TPP's whole life through the register API, over real mutual TLS.

Registration token → signed registration → the authorization code flow with the returned
``client_id`` (PSU pages driven by their documented form fields) → token exchange, refresh,
revocation with that ``client_id`` (the token side matches the QWAC to it "indirectly",
through the organization) → certificate rotation with PUT, after which the TPP refreshes with
its new QWAC → DELETE, after which none of its tokens works.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stetgate.eidas import parse_certificate
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.psu_flow import PsuBrowser, add_psu
from tests.support.token_side import CALLBACK, INTROSPECT, REVOKE, TOKEN
from tests.unit.registry.register_client import RegisteringTpp, client_path, unique_name
from tests.unit.registry.register_requests import registration_document

ORG = "PSDFR-ACPR-30003"


@pytest.fixture
def certs(pki: TestPki) -> TppCerts:
    return pki.issue(ORG, ("AISP", "CBPII"), "Flow TPP")


def post(bank: RunningBank, certs: TppCerts, path: str, form: dict[str, str]) -> httpx.Response:
    with bank.client(certs) as http:
        return http.post(path, data=form)


def token_pair(
    bank: RunningBank, certs: TppCerts, client_id: str, psu_id: str, scope: str = "aisp"
) -> dict[str, Any]:
    """A PSU authorizes the TPP on the bank's pages; the TPP exchanges the code. The clock
    moves one TOTP step first: the bank refuses a one-time code used twice (RFC 6238 §5.2)."""
    bank.clock.advance(30)
    with PsuBrowser(bank) as browser:
        callback = browser.authorize_fully(client_id, psu_id, scope=scope)
    assert callback["state"] == "st-123" and callback["iss"] == bank.services.issuer
    response = post(
        bank,
        certs,
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": CALLBACK,
            "client_id": client_id,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["scope"].split()[0] == scope
    return body


def refresh(
    bank: RunningBank, certs: TppCerts, client_id: str, refresh_token: str
) -> httpx.Response:
    return post(
        bank,
        certs,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
    )


def introspect(bank: RunningBank, certs: TppCerts, token: str) -> dict[str, Any]:
    response = post(bank, certs, INTROSPECT, {"token": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_registered_tpp_runs_the_whole_token_cinematic_rotates_and_is_deleted(
    bank: RunningBank, pki: TestPki, certs: TppCerts
) -> None:
    tpp = RegisteringTpp(bank, certs)
    add_psu(bank, "alice")
    add_psu(bank, "bob")

    # 1. registration token + signed registration
    info = tpp.registered(redirect_uris=[CALLBACK], client_name=unique_name("Flow"))
    client_id, access = info["client_id"], info["registration_access_token"]
    assert client_id != ORG

    # 2. the authorization code flow with the register-issued client_id, for both roles
    aisp = token_pair(bank, certs, client_id, "alice")
    cbpii = token_pair(bank, certs, client_id, "alice", scope="cbpii")
    assert introspect(bank, certs, aisp["access_token"])["client_id"] == client_id
    assert introspect(bank, certs, cbpii["access_token"])["active"] is True

    # 3. revocation with the register-issued client_id (RFC 7009)
    bob = token_pair(bank, certs, client_id, "bob")
    revoked = post(bank, certs, REVOKE, {"token": bob["refresh_token"], "client_id": client_id})
    assert revoked.status_code == 200, revoked.text
    assert refresh(bank, certs, client_id, bob["refresh_token"]).json()["error"] == "invalid_grant"

    # 4. certificate rotation: new QWAC on the session, new QSealC in the body, signed by it
    renewed = pki.issue(ORG, ("AISP", "CBPII"), "Flow TPP", fresh=True)
    rotating = RegisteringTpp(bank, renewed)
    document = registration_document(
        renewed.qsealc_pem,
        client_name=info["client_name"],
        redirect_uris=[CALLBACK],
        kid="qsealc-2026",
        client_id=client_id,
    )
    put = rotating.send(
        "PUT", client_path(client_id), bearer=access, document=document, key_id="qsealc-2026"
    )
    assert put.status_code == 200, put.text
    assert put.json()["jwks"]["keys"][0]["kid"] == "qsealc-2026"

    # the TPP keeps refreshing, now over its new QWAC; the new access token is bound to it
    refreshed = refresh(bank, renewed, client_id, aisp["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    new_access = refreshed.json()["access_token"]
    assert (
        introspect(bank, renewed, new_access)["cnf"]["x5t#S256"]
        == parse_certificate(renewed.qwac_pem.read_bytes()).thumbprint_s256
    )
    assert introspect(bank, renewed, aisp["access_token"])["active"] is False

    # and a new authorization works with the rotated registration
    token_pair(bank, renewed, client_id, "bob")

    # 5. DELETE: every token of the client stops working at once
    deleted = rotating.send("DELETE", client_path(client_id), bearer=access)
    assert deleted.status_code == 204, deleted.text
    after = refresh(bank, renewed, client_id, aisp["refresh_token"])
    assert after.status_code in (400, 401)
    assert after.json()["error"] in ("invalid_grant", "invalid_client")
    after_cbpii = refresh(bank, renewed, client_id, cbpii["refresh_token"])
    assert after_cbpii.json()["error"] in ("invalid_grant", "invalid_client")
    for token in (new_access, cbpii["access_token"], cbpii["refresh_token"]):
        assert introspect(bank, renewed, token) == {"active": False}
    with PsuBrowser(bank) as browser:
        assert browser.authorize(client_id).status_code == 400  # unknown client: no redirect


def test_an_old_qwac_of_the_organization_still_refreshes_after_rotation(
    bank: RunningBank, pki: TestPki, certs: TppCerts
) -> None:
    """Refresh tokens are bound to the client and its organization, not to one certificate
    (docs/decisions.md#certificate-binding), so both the renewed and the previous QWAC work."""
    tpp = RegisteringTpp(bank, certs)
    add_psu(bank, "alice")
    info = tpp.registered(redirect_uris=[CALLBACK])
    pair = token_pair(bank, certs, info["client_id"], "alice")
    renewed = pki.issue(ORG, ("AISP", "CBPII"), "Flow TPP", fresh=True)
    document = registration_document(
        renewed.qsealc_pem, client_name=info["client_name"], redirect_uris=[CALLBACK]
    )
    put = RegisteringTpp(bank, renewed).send(
        "PUT",
        client_path(info["client_id"]),
        bearer=info["registration_access_token"],
        document=document,
    )
    assert put.status_code == 200, put.text
    previous = pair["access_token"]
    for presenting in (renewed, certs):
        response = refresh(bank, presenting, info["client_id"], pair["refresh_token"])
        assert response.status_code == 200, response.text
        access = response.json()["access_token"]
        described = introspect(bank, presenting, access)
        thumbprint = parse_certificate(presenting.qwac_pem.read_bytes()).thumbprint_s256
        assert described["active"] is True and described["cnf"] == {"x5t#S256": thumbprint}
        assert introspect(bank, presenting, previous) == {"active": False}
        previous = access


def test_a_qwac_of_another_organization_cannot_use_a_registered_client_id(
    bank: RunningBank, pki: TestPki, certs: TppCerts
) -> None:
    tpp = RegisteringTpp(bank, certs)
    add_psu(bank, "alice")
    info = tpp.registered(redirect_uris=[CALLBACK])
    pair = token_pair(bank, certs, info["client_id"], "alice")
    other = pki.issue("PSDFR-ACPR-30004", ("AISP",), "Other TPP")
    response = refresh(bank, other, info["client_id"], pair["refresh_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
