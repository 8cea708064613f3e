"""Attack matrix, STET v1.4.2 resource API: HTTP signatures (Part I §3.5, draft-cavage with
the rules of docs/decisions.md#http-signatures), the ``Digest`` of the body (RFC 3230), and
access across TPPs and PSUs, with the unattended-access limit of RTS (EU) 2018/389 Art.
36(5)(b) (four calls a day without the PSU).

Every refusal is a STET error body (``status``, ``message``) with the HTTP status, and
changes neither consents nor unattended counters. One seeded bank serves the module
(`tests.integration.psd2_support.build_world`), reset before each test.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from stetgate.httpsig import compute_digest
from tests.integration.psd2_support import API, ApiWorld, Signer, Tpp, register_client
from tests.integration.test_psd2_api import assert_error, state
from tests.security.matrix import recording_server
from tests.support.pki import TestPki, TppCerts

OTHER_ORG = "PSDFR-ACPR-75002"


@pytest.fixture
def tpp(api: ApiWorld) -> Tpp:
    return api.tpp()


@pytest.fixture(scope="module")
def other_tpp(world: ApiWorld, pki: TestPki) -> TppCerts:
    certs = pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    register_client(world.engine, certs, world.clock.now())
    return certs


def _consent_body(api: ApiWorld) -> dict[str, Any]:
    return {"balances": [{"iban": api.accounts_of("jdupont")[0].iban}]}


def _refused(api: ApiWorld, response: Any, status: int = 401) -> dict[str, Any]:
    body = assert_error(response, status)
    assert state(api) == ([], [])
    return body


# --- the signature itself -----------------------------------------------------------------
def test_request_without_signature_is_401(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    response = tpp.get("accounts", token=token, after_signing=lambda h: h.pop("Signature"))
    assert "Signature" in _refused(api, response)["message"]


def test_signature_by_another_key_under_the_registered_key_id_is_401(
    api: ApiWorld, tpp: Tpp, pki: TestPki
) -> None:
    forger = Signer(Signer.of(pki.issue("PSDFR-ACPR-75003", ("AISP",))).key, tpp.signer.key_id)
    response = tpp.get("accounts", token=api.token("jdupont"), signer=forger)
    assert "does not verify" in _refused(api, response)["message"]


def test_algorithm_confusion_hmac_with_the_public_key_is_401(api: ApiWorld, tpp: Tpp) -> None:
    def hmac(headers: dict[str, str]) -> None:
        headers["Signature"] = headers["Signature"].replace(
            'algorithm="rsa-sha256"', 'algorithm="hmac-sha256"'
        )

    _refused(api, tpp.get("accounts", token=api.token("jdupont"), after_signing=hmac))


def test_algorithm_hs2019_is_401(api: ApiWorld, tpp: Tpp) -> None:
    """hs2019 lets the key decide the algorithm; stetgate pins rsa-sha256."""

    def hs2019(headers: dict[str, str]) -> None:
        headers["Signature"] = headers["Signature"].replace(
            'algorithm="rsa-sha256"', 'algorithm="hs2019"'
        )

    _refused(api, tpp.get("accounts", token=api.token("jdupont"), after_signing=hs2019))


def test_key_id_url_never_registered_is_401_and_never_fetched(api: ApiWorld, pki: TestPki) -> None:
    """keyId SSRF: a URL in keyId is compared with the registered one, never fetched."""
    with recording_server() as (base_url, seen):
        signer = Signer.of(api.tpp_certs, f"{base_url}/qsealc.pem")
        _refused(api, api.tpp(signer=signer).get("accounts", token=api.token("jdupont")))
    assert seen == []


def test_key_id_of_an_unregistered_certificate_is_401(
    api: ApiWorld, tpp: Tpp, pki: TestPki
) -> None:
    stranger = Signer.of(pki.issue("PSDFR-ACPR-75004", ("AISP",)))
    _refused(api, tpp.get("accounts", token=api.token("jdupont"), signer=stranger))


def test_qsealc_of_another_organization_cannot_sign_for_the_token_holder(
    api: ApiWorld, other_tpp: TppCerts
) -> None:
    """The other TPP's own registered seal, over the token holder's QWAC: 401."""
    response = api.tpp(signer=Signer.of(other_tpp)).get("accounts", token=api.token("jdupont"))
    _refused(api, response)


# --- what the signature covers ----------------------------------------------------------------
def test_body_changed_after_signing_fails_the_digest_check(api: ApiWorld, tpp: Tpp) -> None:
    response = tpp.call(
        "PUT",
        "consents",
        token=api.token("jdupont"),
        json_body=_consent_body(api),
        send_body=b'{"psuIdentity":true}',
    )
    _refused(api, response)


def test_body_and_digest_both_replaced_fail_the_signature(api: ApiWorld, tpp: Tpp) -> None:
    forged = b'{"psuIdentity":true}'
    response = tpp.call(
        "PUT",
        "consents",
        token=api.token("jdupont"),
        json_body=_consent_body(api),
        send_body=forged,
        after_signing=lambda h: h.update(Digest=compute_digest(forged)),
    )
    _refused(api, response)


def test_body_signed_without_digest_coverage_is_401(api: ApiWorld, tpp: Tpp) -> None:
    response = tpp.call(
        "PUT",
        "consents",
        token=api.token("jdupont"),
        json_body=_consent_body(api),
        sign=["(request-target)", "x-request-id", "psu-ip-address"],
    )
    assert "digest" in _refused(api, response)["message"]


def test_signature_not_covering_the_psu_headers_is_401(api: ApiWorld, tpp: Tpp) -> None:
    """A PSU-IP-Address added or changed by a middlebox would switch the unattended rules."""
    response = tpp.get(
        "accounts", token=api.token("jdupont"), sign=["(request-target)", "x-request-id"]
    )
    _refused(api, response)


def test_signed_request_replayed_on_another_path_is_401(api: ApiWorld, tpp: Tpp) -> None:
    response = tpp.get(
        "accounts", token=api.token("jdupont"), send_target=f"{API}/end-user-identity"
    )
    _refused(api, response)


def test_signed_header_changed_after_signing_is_401(api: ApiWorld, tpp: Tpp) -> None:
    def moved(headers: dict[str, str]) -> None:
        headers["PSU-IP-Address"] = "203.0.113.9"

    _refused(api, tpp.get("accounts", token=api.token("jdupont"), after_signing=moved))


def test_signed_date_outside_the_allowed_skew_is_401(api: ApiWorld, tpp: Tpp) -> None:
    stale = format_datetime(api.clock.now() - timedelta(seconds=301), usegmt=True)
    response = tpp.get("accounts", token=api.token("jdupont"), headers={"Date": stale})
    assert "Date" in _refused(api, response)["message"]


def test_signed_date_in_the_future_is_401(api: ApiWorld, tpp: Tpp) -> None:
    ahead = format_datetime(api.clock.now() + timedelta(seconds=301), usegmt=True)
    _refused(api, tpp.get("accounts", token=api.token("jdupont"), headers={"Date": ahead}))


def test_captured_signed_request_replayed_by_another_tpp_is_401(
    api: ApiWorld, other_tpp: TppCerts
) -> None:
    """A replay needs the QWAC's private key too: the token is bound to it (RFC 8705 §3)."""
    token = api.token("jdupont")
    sent: dict[str, Any] = {}

    def capture(headers: dict[str, str]) -> None:
        sent.update(headers)

    api.tpp().get("accounts", token=token, after_signing=capture)
    with api.bank.client(other_tpp) as thief:
        _refused(api, thief.get(f"{API}/accounts", headers=sent))


# --- access across TPPs and PSUs ------------------------------------------------------------
def test_access_token_in_the_query_string_is_401(api: ApiWorld, tpp: Tpp) -> None:
    """RFC 6750 §2.3 / FAPI 1.0 §6.2.1-1: bearer tokens only in the Authorization header."""
    token = api.token("jdupont")
    response = tpp.get(f"{API}/accounts?access_token={token}", token=None)
    assert "Authorization" in _refused(api, response)["message"]


def test_account_of_another_psu_is_404(api: ApiWorld, tpp: Tpp) -> None:
    foreign = api.accounts_of("cmartin")[0].resource_id
    response = tpp.get(f"accounts/{foreign}/balances", token=api.token("jdupont"))
    _refused(api, response, 404)


def test_consent_given_to_another_tpp_does_not_open_balances(
    api: ApiWorld, other_tpp: TppCerts
) -> None:
    """Consents are per TPP organization: B cannot read what the PSU allowed A."""
    account = api.accounts_of("jdupont")[0]
    mine = api.tpp()
    put = mine.call(
        "PUT",
        "consents",
        token=api.token("jdupont"),
        json_body={"balances": [{"iban": account.iban}]},
    )
    assert put.status_code == 201, put.text
    before = state(api)
    token_b = api.token("jdupont", certs=other_tpp, client_id=other_tpp.org_id)
    response = api.tpp(other_tpp).get(f"accounts/{account.resource_id}/balances", token=token_b)
    assert_error(response, 403)
    assert state(api) == before


def test_fifth_unattended_call_of_the_day_is_429(api: ApiWorld, tpp: Tpp) -> None:
    """RTS Art. 36(5)(b): without PSU-IP-Address at most four accesses a day."""
    token = api.token("jdupont")
    for call in range(4):
        assert tpp.get("accounts", token=token, psu_ip=None).status_code == 200, call
    counted = state(api)
    body = assert_error(tpp.get("accounts", token=token, psu_ip=None), 429)
    assert "unattended" in body["message"]
    assert state(api) == counted  # the refused call is not counted
