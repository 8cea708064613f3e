"""POST /stet/psd2/oauth/token with grant_type=refresh_token, over real mutual TLS.

RFC 6749 §6 and docs/decisions.md#refresh: new access token, same refresh token, the previous
access token dead at once, bound to the presenting QWAC; last SCA younger than
``sca_validity_days``; ``extended_transaction_history`` dropped; rotation with reuse detection
as a setting. Refusals leave the database unchanged (only the audit trail grows).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from stetgate.eidas import parse_certificate
from stetgate.oauth.clients import CLIENT_SUSPENDED, set_status
from stetgate.store.audit_events import REFRESH_TOKEN_REUSED, TOKEN_REFRESHED, TOKEN_REFUSED
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import (
    REVOKE,
    TOKEN,
    add_client,
    audit_trail,
    database_state,
    introspect,
    obtain_pair,
    refresh_form,
    revoke_certificate,
)

ORG = "PSDFR-ACPR-41001"
OTHER_ORG = "PSDFR-ACPR-41002"


@pytest.fixture
def tpp(pki: TestPki) -> TppCerts:
    return pki.issue(ORG, ("AISP", "CBPII"))


def _refresh_refused(
    bank: RunningBank, tpp: TppCerts, form: dict[str, str], error: str, status: int = 400
) -> str:
    engine = bank.services.engine
    before = database_state(engine)
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=form)
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    assert database_state(engine) == before
    assert audit_trail(engine, TOKEN_REFUSED)[-1]["reason"].startswith(error)
    description: str = response.json()["error_description"]
    return description


@pytest.mark.postgres  # PostgreSQL smoke test of the refresh
def test_refresh_returns_a_new_access_token_and_the_same_refresh_token(
    bank: RunningBank, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    bank.clock.advance(600)
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["refresh_token"] == pair["refresh_token"]
    assert body["access_token"] != pair["access_token"]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "aisp"
    assert introspect(bank, tpp, token=pair["access_token"]) == {"active": False}
    described = introspect(bank, tpp, token=body["access_token"])
    assert described["active"] is True
    assert described["iat"] == int(bank.clock.now().timestamp())
    refreshed = audit_trail(bank.services.engine, TOKEN_REFRESHED)
    assert [(e["client_id"], e["org_id"], e["psu_id"]) for e in refreshed] == [(ORG, ORG, "psu-1")]


def test_refresh_drops_extended_transaction_history(bank_factory: Any, pki: TestPki) -> None:
    bank: RunningBank = bank_factory(allow_extended_history=True)
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, scope="aisp extended_transaction_history")
    assert pair["scope"] == "aisp extended_transaction_history"
    with bank.client(tpp) as http:
        body = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"])).json()
    assert body["scope"] == "aisp"
    assert introspect(bank, tpp, token=body["access_token"])["scope"] == "aisp"


def test_refreshed_access_token_is_bound_to_the_presenting_certificate(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    renewed = pki.issue(ORG, ("AISP", "CBPII"), fresh=True)
    with bank.client(renewed) as http:
        response = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
    assert response.status_code == 200, response.text
    thumbprint = parse_certificate(renewed.qwac_pem.read_bytes()).thumbprint_s256
    old_thumbprint = parse_certificate(tpp.qwac_pem.read_bytes()).thumbprint_s256
    described = introspect(bank, tpp, token=response.json()["access_token"])
    assert described["cnf"] == {"x5t#S256": thumbprint} != {"x5t#S256": old_thumbprint}


@pytest.mark.postgres  # the refresh statement's SCA age
def test_refresh_after_sca_validity_days_is_refused(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    bank.clock.advance(days=90)
    description = _refresh_refused(
        bank, tpp, refresh_form(client, pair["refresh_token"]), "invalid_grant"
    )
    assert "new authorization with SCA" in description


@pytest.mark.postgres  # the refresh statement's SCA age
def test_refresh_just_before_sca_validity_days_works(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    bank.clock.advance(days=90, seconds=-1)
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
    assert response.status_code == 200
    assert response.json()["expires_in"] == 1  # never outlives the refresh token
    assert introspect(bank, tpp, token=response.json()["access_token"])["active"] is True
    assert len(audit_trail(bank.services.engine, TOKEN_REFRESHED)) == 1


def test_shorter_sca_validity_setting_applies_to_existing_pairs(
    bank_factory: Any, pki: TestPki
) -> None:
    bank: RunningBank = bank_factory(sca_validity_days=30)
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    bank.clock.advance(days=30)
    _refresh_refused(bank, tpp, refresh_form(client, pair["refresh_token"]), "invalid_grant")


def test_refresh_with_a_revoked_pair_is_refused(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    with bank.client(tpp) as http:
        revoked = http.post(
            REVOKE, data={"token": pair["access_token"], "client_id": client.client_id}
        )
    assert revoked.status_code == 200
    description = _refresh_refused(
        bank, tpp, refresh_form(client, pair["refresh_token"]), "invalid_grant"
    )
    assert "revoked" in description


def test_old_access_token_is_inactive_after_refresh(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    tokens = [pair["access_token"]]
    with bank.client(tpp) as http:
        for _ in range(3):
            tokens.append(
                http.post(TOKEN, data=refresh_form(client, pair["refresh_token"])).json()[
                    "access_token"
                ]
            )
    assert [introspect(bank, tpp, token=t)["active"] for t in tokens] == [False, False, False, True]


def test_refresh_token_of_another_client_is_invalid_grant(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    other_tpp = pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    other = add_client(bank.services.engine, other_tpp, bank.clock.now())
    description = _refresh_refused(
        bank, other_tpp, refresh_form(other, pair["refresh_token"]), "invalid_grant"
    )
    assert "another client" in description


def test_refresh_with_certificate_of_another_organization_is_invalid_client(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    other_tpp = pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    _refresh_refused(
        bank, other_tpp, refresh_form(client, pair["refresh_token"]), "invalid_client", 401
    )


def test_refresh_with_revoked_certificate_is_invalid_client(
    bank: RunningBank, pki: TestPki
) -> None:
    tpp = pki.issue(ORG, ("AISP", "CBPII"), fresh=True)
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    revoke_certificate(bank, tpp)
    description = _refresh_refused(
        bank, tpp, refresh_form(client, pair["refresh_token"]), "invalid_client", 401
    )
    assert description.startswith("certificate revoked")


def test_refresh_without_the_role_is_unauthorized_client(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    cbpii_only = pki.issue(ORG, ("CBPII",))
    _refresh_refused(
        bank, cbpii_only, refresh_form(client, pair["refresh_token"]), "unauthorized_client"
    )


def test_refresh_by_a_suspended_client_is_refused(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    with bank.services.engine.begin() as conn:
        set_status(conn, client.client_id, CLIENT_SUSPENDED, bank.clock.now())
    _refresh_refused(bank, tpp, refresh_form(client, pair["refresh_token"]), "unauthorized_client")


def test_unknown_refresh_token_is_invalid_grant(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    _refresh_refused(bank, tpp, refresh_form(client, "r" * 43), "invalid_grant")


def test_access_token_is_not_a_refresh_token(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    _refresh_refused(bank, tpp, refresh_form(client, pair["access_token"]), "invalid_grant")


def test_missing_refresh_token_is_invalid_request(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    form = {"grant_type": "refresh_token", "client_id": client.client_id}
    _refresh_refused(bank, tpp, form, "invalid_request")


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("aisp extended_transaction_history", "invalid_scope"),
        ("cbpii", "invalid_scope"),
        ("pisp", "invalid_scope"),
    ],
)
def test_scope_escalation_on_refresh_is_invalid_scope(
    bank: RunningBank, tpp: TppCerts, scope: str, error: str
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    _refresh_refused(bank, tpp, refresh_form(client, pair["refresh_token"], scope=scope), error)


def test_refresh_with_the_role_scope_is_accepted(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client, scope="cbpii")
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"], scope="cbpii"))
    assert response.status_code == 200 and response.json()["scope"] == "cbpii"
    described = introspect(bank, tpp, token=response.json()["access_token"])
    assert described["active"] is True and described["scope"] == "cbpii"
    assert introspect(bank, tpp, token=pair["access_token"]) == {"active": False}


@pytest.mark.postgres  # the rotating refresh statement
def test_rotation_issues_a_new_refresh_token_and_detects_reuse(
    bank_factory: Any, pki: TestPki
) -> None:
    bank: RunningBank = bank_factory(rotate_refresh_tokens=True)
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    with bank.client(tpp) as http:
        rotated = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"])).json()
        assert rotated["refresh_token"] != pair["refresh_token"]
        reused = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert "reuse" in reused.json()["error_description"]
    assert introspect(bank, tpp, token=rotated["access_token"]) == {"active": False}
    assert introspect(bank, tpp, token=rotated["refresh_token"]) == {"active": False}
    assert len(audit_trail(bank.services.engine, REFRESH_TOKEN_REUSED)) == 1


def test_rotation_chain_keeps_working(bank_factory: Any, pki: TestPki) -> None:
    bank: RunningBank = bank_factory(rotate_refresh_tokens=True)
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    refresh_token, access_token = pair["refresh_token"], pair["access_token"]
    seen = {refresh_token}
    with bank.client(tpp) as http:
        for _ in range(3):
            response = http.post(TOKEN, data=refresh_form(client, refresh_token))
            assert response.status_code == 200
            # the presented refresh token and its access token die; the new ones work
            assert introspect(bank, tpp, token=refresh_token) == {"active": False}
            assert introspect(bank, tpp, token=access_token) == {"active": False}
            refresh_token = response.json()["refresh_token"]
            access_token = response.json()["access_token"]
            assert refresh_token not in seen
            seen.add(refresh_token)
            assert introspect(bank, tpp, token=refresh_token)["active"] is True
            assert introspect(bank, tpp, token=access_token)["active"] is True
    assert len(audit_trail(bank.services.engine, TOKEN_REFRESHED)) == 3
    assert audit_trail(bank.services.engine, REFRESH_TOKEN_REUSED) == []


def test_refresh_over_one_keep_alive_connection(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    with bank.client(tpp) as http:
        statuses = {
            http.post(TOKEN, data=refresh_form(client, pair["refresh_token"])).status_code
            for _ in range(20)
        }
    assert statuses == {200}
    assert len(audit_trail(bank.services.engine, TOKEN_REFRESHED)) == 20


def test_refresh_without_client_certificate_is_invalid_client(
    bank: RunningBank, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    before = database_state(bank.services.engine)
    with httpx.Client(base_url=bank.base_url, verify=bank.pki.client_ssl_context()) as http:
        response = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert database_state(bank.services.engine) == before


def test_refresh_seen_by_the_pair_timeline(bank: RunningBank, tpp: TppCerts) -> None:
    """One pair across its life: refreshable until sca + 90 days, then never again."""
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    with bank.client(tpp) as http:
        for _ in range(3):
            bank.clock.advance(timedelta(days=29).total_seconds())
            response = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
            assert response.status_code == 200
            assert introspect(bank, tpp, token=response.json()["access_token"])["active"] is True
        bank.clock.advance(timedelta(days=3).total_seconds())
        before = database_state(bank.services.engine)
        refused = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
    assert database_state(bank.services.engine) == before
    assert introspect(bank, tpp, token=pair["refresh_token"]) == {"active": False}
    assert len(audit_trail(bank.services.engine, TOKEN_REFRESHED)) == 3
