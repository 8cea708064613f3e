"""POST /stet/psd2/oauth/revoke (RFC 7009) over real mutual TLS."""

from __future__ import annotations

import httpx
import pytest

from stetgate.oauth.clients import Client
from stetgate.store.audit_events import REVOCATION_REFUSED, TOKEN_REVOKED
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
)

ORG = "PSDFR-ACPR-42001"
OTHER_ORG = "PSDFR-ACPR-42002"


@pytest.fixture
def tpp(pki: TestPki) -> TppCerts:
    return pki.issue(ORG, ("AISP", "CBPII"))


@pytest.fixture
def client(bank: RunningBank, tpp: TppCerts) -> Client:
    return add_client(bank.services.engine, tpp, bank.clock.now())


def _revoke(bank: RunningBank, tpp: TppCerts | None, form: dict[str, str]) -> httpx.Response:
    with bank.client(tpp) as http:
        return http.post(REVOKE, data=form)


@pytest.mark.parametrize(
    ("which", "hint"),
    [
        ("access_token", None),
        ("refresh_token", None),
        ("access_token", "refresh_token"),
        ("refresh_token", "access_token"),
        ("refresh_token", "something_else"),
    ],
)
@pytest.mark.postgres  # PostgreSQL smoke test of /revoke
def test_revoking_either_token_revokes_the_pair(
    bank: RunningBank, tpp: TppCerts, client: Client, which: str, hint: str | None
) -> None:
    pair = obtain_pair(bank, tpp, client)
    form = {"token": pair[which], "client_id": client.client_id}
    if hint:
        form["token_type_hint"] = hint
    response = _revoke(bank, tpp, form)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert not introspect(bank, tpp, token=pair["access_token"])["active"]
    assert not introspect(bank, tpp, token=pair["refresh_token"])["active"]
    with bank.client(tpp) as http:
        refreshed = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
    assert refreshed.json()["error"] == "invalid_grant"
    revoked = audit_trail(bank.services.engine, TOKEN_REVOKED)
    assert [(e["client_id"], e["psu_id"], e["reason"]) for e in revoked] == [
        (ORG, "psu-1", "revoked_by_client")
    ]


def test_revoking_an_unknown_token_answers_200_and_changes_nothing(
    bank: RunningBank, tpp: TppCerts, client: Client
) -> None:
    obtain_pair(bank, tpp, client)
    before = database_state(bank.services.engine)
    response = _revoke(bank, tpp, {"token": "u" * 43, "client_id": client.client_id})
    assert response.status_code == 200
    assert database_state(bank.services.engine) == before


def test_revoking_an_already_revoked_token_answers_200(
    bank: RunningBank, tpp: TppCerts, client: Client
) -> None:
    pair = obtain_pair(bank, tpp, client)
    form = {"token": pair["refresh_token"], "client_id": client.client_id}
    assert _revoke(bank, tpp, form).status_code == 200
    before = database_state(bank.services.engine)
    assert _revoke(bank, tpp, form).status_code == 200
    assert database_state(bank.services.engine) == before


def test_token_of_another_client_is_left_alone(
    bank: RunningBank, pki: TestPki, tpp: TppCerts, client: Client
) -> None:
    pair = obtain_pair(bank, tpp, client)
    other_tpp = pki.issue(OTHER_ORG, ("AISP",))
    other = add_client(bank.services.engine, other_tpp, bank.clock.now())
    before = database_state(bank.services.engine)
    response = _revoke(
        bank, other_tpp, {"token": pair["access_token"], "client_id": other.client_id}
    )
    assert response.status_code == 200
    assert database_state(bank.services.engine) == before
    assert introspect(bank, tpp, token=pair["access_token"])["active"]


@pytest.mark.parametrize(
    ("cert", "form", "error", "status"),
    [
        ("none", {"token": "t" * 43, "client_id": ORG}, "invalid_client", 401),
        ("other", {"token": "t" * 43, "client_id": ORG}, "invalid_client", 401),
        ("own", {"client_id": ORG}, "invalid_request", 400),
        ("own", {"token": "t" * 43}, "invalid_request", 400),
        ("own", {"token": "t" * 43, "client_id": "PSDFR-ACPR-42999"}, "invalid_client", 401),
    ],
)
def test_refused_revocations_change_nothing(
    bank: RunningBank,
    pki: TestPki,
    tpp: TppCerts,
    client: Client,
    cert: str,
    form: dict[str, str],
    error: str,
    status: int,
) -> None:
    pair = obtain_pair(bank, tpp, client)
    presenter = {"none": None, "own": tpp, "other": pki.issue(OTHER_ORG, ("AISP",))}[cert]
    if form.get("token"):
        form = {**form, "token": pair["access_token"]}
    before = database_state(bank.services.engine)
    response = _revoke(bank, presenter, form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert database_state(bank.services.engine) == before
    assert audit_trail(bank.services.engine, REVOCATION_REFUSED)[-1]["reason"].startswith(error)


def test_revocation_needs_a_form_body(bank: RunningBank, tpp: TppCerts, client: Client) -> None:
    pair = obtain_pair(bank, tpp, client)
    with bank.client(tpp) as http:
        response = http.post(REVOKE, json={"token": pair["access_token"], "client_id": ORG})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert introspect(bank, tpp, token=pair["access_token"])["active"]
