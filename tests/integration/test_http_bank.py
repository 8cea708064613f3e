"""Core banking over HTTP, against the real thing: the demo bank's service
(``stetgate demo-bank serve``) in a separate process, and the gateway configured with
``bank_url`` — so `HttpBank` is what serves the STET API.

- contract tests: for every demo PSU, `HttpBank` over the service and the in-process
  `DemoBank` over the same database return the same values, business refusals included;
- the STET API through `HttpBank`: accounts, consent, balances, transactions (paging to the
  end), identity, trusted beneficiaries, funds confirmation;
- mutual TLS to the service (``bank_auth = mtls``), and a refused client certificate.

SQLite, and PostgreSQL for the cases marked (the demo bank's statements are the dialect-
sensitive part).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from stetgate.bank.backend import CurrencyMismatch, TransactionQuery, UnknownAccount
from stetgate.bank.failures import BankUnavailable
from stetgate.bank_http import HttpBank, http_bank
from stetgate.demo.bank import DemoBank
from stetgate.settings import Settings
from tests.conftest import fresh_database_url
from tests.integration.psd2_support import ApiWorld, Tpp, build_world
from tests.support.core_banking import DemoBankService, start_demo_bank_service
from tests.support.pki import TestPki

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def service_world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[tuple[ApiWorld, DemoBankService]]:
    directory = tmp_path_factory.mktemp("http-bank")
    url = fresh_database_url(request, database, directory)
    service = start_demo_bank_service(url, directory / "core-banking")
    try:
        for world in build_world(
            request, pki, directory, database, url=url, bank_url=service.url, bank_auth="none"
        ):
            yield world, service
    finally:
        service.stop()


@pytest.fixture
def world(service_world: tuple[ApiWorld, DemoBankService]) -> ApiWorld:
    world, _service = service_world
    world.reset()
    bank = world.bank.services.bank
    assert isinstance(bank, HttpBank)
    bank.breaker.reset()
    return world


@pytest.fixture
def remote(world: ApiWorld) -> HttpBank:
    bank = world.bank.services.bank
    assert isinstance(bank, HttpBank)
    return bank


@pytest.fixture
def local(world: ApiWorld) -> DemoBank:
    return DemoBank(world.bank.services.read_engine)


def _psus(world: ApiWorld) -> list[str]:
    return [p.psu_id for p in world.ledger.psus]


# --------------------------------------------------------------------------- contract


@pytest.mark.postgres  # the demo bank's statements differ by dialect
def test_accounts_and_balances_over_http_equal_the_in_process_bank(
    world: ApiWorld, remote: HttpBank, local: DemoBank
) -> None:
    for psu_id in [*_psus(world), "nobody"]:
        accounts = local.accounts_of(psu_id)
        assert remote.accounts_of(psu_id) == accounts
        ids = [a.resource_id for a in accounts]
        some = ids[::2]
        assert remote.accounts_with_balances(psu_id, some) == local.accounts_with_balances(
            psu_id, some
        )
        assert remote.accounts_with_balances(psu_id, ids) == local.accounts_with_balances(
            psu_id, ids
        )
        asked = [*ids, "not-an-account"]
        assert remote.balances_of(psu_id, asked) == local.balances_of(psu_id, asked)
    assert remote.balances_of("nobody", []) == {}


@pytest.mark.postgres
def test_transaction_pages_over_http_equal_the_in_process_bank(
    world: ApiWorld, remote: HttpBank, local: DemoBank
) -> None:
    today = world.clock.now().astimezone(PARIS).date()
    compared = 0
    for psu_id in _psus(world):
        for account in local.accounts_of(psu_id):
            first = local.transactions_of(psu_id, account.resource_id, TransactionQuery(limit=7))
            queries = [
                TransactionQuery(limit=7),
                TransactionQuery(offset=7, limit=7, up_to_entry=first.snapshot_entry),
                TransactionQuery(booked_from=today - timedelta(days=30), limit=50),
                TransactionQuery(
                    booked_from=today - timedelta(days=60),
                    booked_before=today - timedelta(days=10),
                    offset=3,
                    limit=5,
                ),
                TransactionQuery(after_entry=max(0, (first.snapshot_entry or 0) - 4), limit=50),
                TransactionQuery(offset=first.total + 5, limit=10),  # past the end: empty
            ]
            for query in queries:
                expected = local.transactions_of(psu_id, account.resource_id, query)
                assert remote.transactions_of(psu_id, account.resource_id, query) == expected
                compared += len(expected.transactions)
    assert compared > 100


@pytest.mark.postgres
def test_identity_beneficiaries_and_funds_over_http_equal_the_in_process_bank(
    world: ApiWorld, remote: HttpBank, local: DemoBank
) -> None:
    for psu_id in [*_psus(world), "nobody"]:
        assert remote.identity_of(psu_id) == local.identity_of(psu_id)
        assert remote.trusted_beneficiaries_of(psu_id) == local.trusted_beneficiaries_of(psu_id)
        for account in local.accounts_of(psu_id):
            for amount in (Decimal("0.01"), Decimal("150.5"), Decimal("99999999.999")):
                assert remote.funds_available(
                    psu_id, account.resource_id, amount, account.currency
                ) == local.funds_available(psu_id, account.resource_id, amount, account.currency)
    assert remote.identity_of("nobody") is None


def test_refusals_over_http_are_the_ports_own_exceptions(
    world: ApiWorld, remote: HttpBank, local: DemoBank
) -> None:
    psu_id = "jdupont"
    foreign = next(
        a.resource_id for a in world.ledger.accounts if all(h != psu_id for h, _ in a.holders)
    )
    for bank in (local, remote):
        with pytest.raises(UnknownAccount):
            bank.transactions_of(psu_id, foreign, TransactionQuery())
        with pytest.raises(UnknownAccount):
            bank.funds_available(psu_id, foreign, Decimal("1"), "EUR")
        with pytest.raises(CurrencyMismatch):
            bank.funds_available(
                psu_id, local.accounts_of(psu_id)[0].resource_id, Decimal("1"), "USD"
            )
    # business refusals are answers: the breaker stays closed
    assert remote.breaker.state == "closed"


# --------------------------------------------------------------------------- STET API


def _consent_all(world: ApiWorld, tpp: Tpp, token: str, psu_id: str) -> list[Any]:
    accounts = world.accounts_of(psu_id)
    refs = [
        {"iban": a.iban}
        if a.iban
        else {"other": {"identification": a.other_identification, "schemeName": "CPAN"}}
        for a in accounts
    ]
    response = tpp.call(
        "PUT",
        "consents",
        token=token,
        json_body={
            "balances": refs,
            "transactions": refs,
            "psuIdentity": True,
            "trustedBeneficiaries": True,
        },
    )
    assert response.status_code == 201, response.text
    return accounts


@pytest.mark.postgres  # smoke test of the STET API through HttpBank
def test_stet_accounts_balances_identity_and_beneficiaries_through_http_bank(
    world: ApiWorld, local: DemoBank
) -> None:
    tpp = world.tpp()
    token = world.token("jdupont")
    before = tpp.get("accounts", token=token)
    assert before.status_code == 200, before.text
    assert before.headers["x-request-id"] == before.request.headers["x-request-id"]
    ids = [a.resource_id for a in local.accounts_of("jdupont")]
    assert [a["resourceId"] for a in before.json()["accounts"]] == ids

    _consent_all(world, tpp, token, "jdupont")
    after = tpp.get("accounts", token=token).json()
    expected = dict(local.accounts_with_balances("jdupont", ids))
    for item in after["accounts"]:
        account = next(a for a in expected if a.resource_id == item["resourceId"])
        assert [b["balanceAmount"]["amount"] for b in item.get("balances", [])] == [
            b.amount.stet_amount() for b in expected[account] or ()
        ]
    balances = tpp.get(f"accounts/{ids[0]}/balances", token=token)
    assert balances.status_code == 200, balances.text
    assert [b["balanceType"] for b in balances.json()["balances"]] == [
        b.balance_type for b in local.balances_of("jdupont", [ids[0]])[ids[0]]
    ]
    identity = tpp.get("end-user-identity", token=token)
    assert identity.status_code == 200, identity.text
    assert identity.json()["connectedPsu"] == local.identity_of("jdupont").connected_psu  # type: ignore[union-attr]
    beneficiaries = tpp.get("trusted-beneficiaries", token=token)
    assert beneficiaries.status_code == 200, beneficiaries.text
    assert [b["id"] for b in beneficiaries.json()["beneficiaries"]] == [
        b.id for b in local.trusted_beneficiaries_of("jdupont")
    ][:50]


@pytest.mark.postgres
def test_stet_transactions_page_to_the_end_through_http_bank(
    world: ApiWorld, local: DemoBank
) -> None:
    tpp = world.tpp()
    token = world.token("jdupont")
    account = _consent_all(world, tpp, token, "jdupont")[2]
    response = tpp.get(f"accounts/{account.resource_id}/transactions", token=token)
    seen: list[int] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(int(t["entryReference"]) for t in body["transactions"])
        if "next" not in body["_links"]:
            break
        response = tpp.follow(body["_links"]["next"]["href"], token=token)
    oldest = world.clock.now().astimezone(PARIS).date() - timedelta(days=90)
    listing = local.transactions_of(
        "jdupont", account.resource_id, TransactionQuery(booked_from=oldest, limit=10_000)
    )
    assert seen == [t.entry_reference for t in listing.transactions]
    assert len(seen) > 50 and len(set(seen)) == len(seen)


def test_stet_funds_confirmation_through_http_bank(world: ApiWorld, local: DemoBank) -> None:
    tpp = world.tpp()
    token = world.token("sroux", "cbpii")
    account = local.accounts_of("sroux")[0]
    for amount in ("0.01", "99999999.99"):
        response = tpp.call(
            "POST",
            "funds-confirmations",
            token=token,
            json_body={
                "paymentCoverageRequestId": f"c-{amount}",
                "instructedAmount": {"currency": "EUR", "amount": amount},
                "accountId": {"iban": account.iban},
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["result"] is local.funds_available(
            "sroux", account.resource_id, Decimal(amount), "EUR"
        )
    usd = tpp.call(
        "POST",
        "funds-confirmations",
        token=token,
        json_body={
            "paymentCoverageRequestId": "c-usd",
            "instructedAmount": {"currency": "USD", "amount": "1.00"},
            "accountId": {"iban": account.iban},
        },
    )
    assert usd.status_code == 400, usd.text  # CurrencyMismatch over HTTP: the TPP's error


# --------------------------------------------------------------------------- mutual TLS


def test_mutual_tls_to_the_core_banking_service(
    request: pytest.FixtureRequest, pki: TestPki, tmp_path: Any
) -> None:
    url = fresh_database_url(request, "sqlite", tmp_path)
    service = start_demo_bank_service(
        url, tmp_path / "svc", tls=(pki.server_pem, pki.server_key, pki.ca_pem)
    )
    gateway = pki.issue("PSDFR-ACPR-GATEWAY", ("AISP",))
    try:
        common: dict[str, Any] = dict(
            data_dir=tmp_path, bank_url=service.url, bank_ca_file=pki.ca_pem, bank_retries=0
        )
        with_cert = http_bank(
            Settings(
                **common,
                bank_auth="mtls",
                bank_client_cert_file=gateway.qwac_pem,
                bank_client_key_file=gateway.qwac_key,
            )
        )
        without_cert = http_bank(Settings(**common, bank_auth="none"))
        try:
            assert with_cert.accounts_of("nobody") == []
            with pytest.raises(BankUnavailable):
                without_cert.accounts_of("nobody")  # the service requires a client certificate
        finally:
            with_cert.close()
            without_cert.close()
        with pytest.raises(httpx.HTTPError):  # and it does not speak plain HTTP
            httpx.get(service.url.replace("https", "http") + "/core-banking/v1/health")
    finally:
        service.stop()
