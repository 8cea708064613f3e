"""POST /stet/psd2/oauth/introspect (RFC 7662) over real mutual TLS."""

from __future__ import annotations

from typing import Any

import pytest

from stetgate.eidas import parse_certificate
from stetgate.oauth.clients import CLIENT_SUSPENDED, set_status
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import (
    INTROSPECT,
    TOKEN,
    add_client,
    introspect,
    obtain_pair,
    refresh_form,
)

ORG = "PSDFR-ACPR-43001"
OTHER_ORG = "PSDFR-ACPR-43002"
BANK_ORG = "PSDFR-ACPR-43999"


@pytest.fixture
def tpp(pki: TestPki) -> TppCerts:
    return pki.issue(ORG, ("AISP", "CBPII"))


@pytest.fixture
def resource_server(pki: TestPki) -> TppCerts:
    return pki.issue(BANK_ORG, ("ASPSP",))


@pytest.fixture
def bank(bank_factory: Any) -> RunningBank:
    running: RunningBank = bank_factory(introspection_org_ids=[BANK_ORG])
    return running


@pytest.mark.postgres  # PostgreSQL smoke test of /introspect
def test_tpp_introspects_its_own_access_token(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    now = int(bank.clock.now().timestamp())
    body = introspect(bank, tpp, token=pair["access_token"])
    thumbprint = parse_certificate(tpp.qwac_pem.read_bytes()).thumbprint_s256
    assert body == {
        "active": True,
        "client_id": ORG,
        "iss": bank.base_url,
        "sub": body["sub"],
        "scope": "aisp",
        "token_type": "Bearer",
        "exp": now + 3600,
        "iat": now,
        "cnf": {"x5t#S256": thumbprint},
    }
    assert body["sub"] != "psu-77" and len(body["sub"]) == 43


def test_resource_server_introspects_any_token_and_sees_the_psu(
    bank: RunningBank, tpp: TppCerts, resource_server: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    body = introspect(bank, resource_server, token=pair["access_token"])
    assert body["active"] is True and body["sub"] == "psu-77"
    refresh = introspect(bank, resource_server, token=pair["refresh_token"])
    assert refresh["active"] is True and refresh["scope"] == "aisp" and "cnf" not in refresh


def test_psp_as_certificate_not_listed_is_just_a_tpp(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    unlisted = pki.issue("PSDFR-ACPR-43998", ("ASPSP",))
    assert introspect(bank, unlisted, token=pair["access_token"]) == {"active": False}


def test_listed_organization_without_psp_as_role_is_just_a_tpp(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    listed_aisp = pki.issue(BANK_ORG, ("AISP",))
    assert introspect(bank, listed_aisp, token=pair["access_token"]) == {"active": False}


def test_another_tpp_learns_nothing(bank: RunningBank, pki: TestPki, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    other = pki.issue(OTHER_ORG, ("AISP",))
    for token in (pair["access_token"], pair["refresh_token"], "x" * 43):
        assert introspect(bank, other, token=token) == {"active": False}


def test_token_over_another_certificate_shows_its_binding(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    """The resource API refuses a token presented over another certificate (RFC 8705 §3);
    introspection tells resource servers which certificate that is."""
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    second = pki.issue(ORG, ("AISP", "CBPII"), fresh=True)
    body = introspect(bank, second, token=pair["access_token"])
    bound = parse_certificate(tpp.qwac_pem.read_bytes()).thumbprint_s256
    presenting = parse_certificate(second.qwac_pem.read_bytes()).thumbprint_s256
    assert body["cnf"] == {"x5t#S256": bound} != {"x5t#S256": presenting}


def test_expired_access_token_is_inactive(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    bank.clock.advance(3600)
    assert introspect(bank, tpp, token=pair["access_token"]) == {"active": False}
    assert introspect(bank, tpp, token=pair["refresh_token"])["active"] is True


def test_refresh_token_after_sca_validity_is_inactive(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    bank.clock.advance(days=90)
    assert introspect(bank, tpp, token=pair["refresh_token"]) == {"active": False}


def test_tokens_of_a_suspended_client_are_inactive(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    with bank.services.engine.begin() as conn:
        set_status(conn, client.client_id, CLIENT_SUSPENDED, bank.clock.now())
    assert introspect(bank, tpp, token=pair["access_token"]) == {"active": False}


def test_hint_only_orders_the_lookup(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    wrong_hint = introspect(bank, tpp, token=pair["access_token"], token_type_hint="refresh_token")
    assert wrong_hint["active"] is True and wrong_hint["token_type"] == "Bearer"


def test_refreshed_access_token_replaces_the_old_one(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, psu_id="psu-77")
    with bank.client(tpp) as http:
        new = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"])).json()
    assert introspect(bank, tpp, token=pair["access_token"]) == {"active": False}
    assert introspect(bank, tpp, token=new["access_token"])["active"] is True


@pytest.mark.parametrize(
    ("with_cert", "form", "error", "status"),
    [
        (False, {"token": "t" * 43}, "invalid_client", 401),
        (True, {}, "invalid_request", 400),
        (True, {"token": "a", "token_type_hint": "x", "extra": "1", "token ": "dup"}, None, 200),
    ],
)
def test_introspection_requests_are_checked(
    bank: RunningBank,
    tpp: TppCerts,
    with_cert: bool,
    form: dict[str, str],
    error: str | None,
    status: int,
) -> None:
    with bank.client(tpp if with_cert else None) as http:
        response = http.post(INTROSPECT, data=form)
    assert response.status_code == status
    if error:
        assert response.json()["error"] == error
    else:
        assert response.json() == {"active": False}
