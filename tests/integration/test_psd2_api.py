"""The STET AISP/CBPII resource API over mutual TLS, with tokens bound to the QWAC and requests
signed with the QSealC: data shapes (JSON schemas of STET Part II), consent, paging, history
depth, funds confirmation, and every way a call can be refused. SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update

from stetgate.oauth.clients import set_status
from stetgate.psd2.errors import HAL_JSON
from stetgate.store.schema import (
    bank_accounts,
    bank_balances,
    bank_transactions,
    grants,
    psd2_consents,
    psd2_unattended_access,
)
from stetgate.tpp.doctor import stet_schemas as schemas
from tests.integration.psd2_support import (
    API,
    ApiWorld,
    Signer,
    Tpp,
    build_world,
    register_client,
)
from tests.support.pki import TestPki

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    yield from build_world(request, pki, tmp_path_factory.mktemp("psd2-api"), database)


@pytest.fixture
def api(world: ApiWorld) -> ApiWorld:
    world.reset()
    return world


@pytest.fixture
def tpp(api: ApiWorld) -> Tpp:
    return api.tpp()


def state(world: ApiWorld) -> tuple[Any, ...]:
    """Everything a resource-API call may change."""
    with world.engine.connect() as conn:
        return (
            sorted(tuple(r) for r in conn.execute(select(psd2_consents)).all()),
            sorted(tuple(r) for r in conn.execute(select(psd2_unattended_access)).all()),
        )


def assert_error(response: httpx.Response, status: int, *, echoed: bool = True) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == HAL_JSON
    body: dict[str, Any] = response.json()
    schemas.check(body, schemas.ERROR)
    assert body["status"] == status
    sent = response.request.headers.get("x-request-id")
    if echoed:
        assert response.headers["x-request-id"] == sent
    else:
        assert "x-request-id" not in response.headers
    assert "Traceback" not in response.text
    return body


def consent_all(
    world: ApiWorld,
    tpp: Tpp,
    token: str,
    psu_id: str = "jdupont",
    *,
    identity: bool = True,
    beneficiaries: bool = True,
) -> list[Any]:
    accounts = world.accounts_of(psu_id)
    refs = [_reference(a) for a in accounts]
    response = tpp.call(
        "PUT",
        "consents",
        token=token,
        json_body={
            "balances": refs,
            "transactions": refs,
            "psuIdentity": identity,
            "trustedBeneficiaries": beneficiaries,
        },
    )
    assert response.status_code == 201, response.text
    return accounts


def _reference(account: Any) -> dict[str, Any]:
    if account.iban:
        return {"iban": account.iban}
    return {"other": {"identification": account.other_identification, "schemeName": "CPAN"}}


def _page(href: str) -> str:
    return parse_qs(urlsplit(href).query)["page"][0]


# --------------------------------------------------------------------------- accounts & consent


def test_accounts_before_any_consent_are_listed_without_balances_or_links(
    api: ApiWorld, tpp: Tpp
) -> None:
    token = api.token("jdupont")
    response = tpp.get("accounts", token=token)
    assert response.status_code == 200
    assert response.headers["content-type"] == HAL_JSON
    assert response.headers["x-request-id"] == response.request.headers["x-request-id"]
    body = response.json()
    schemas.check(body, schemas.ACCOUNTS)
    ids = [a["resourceId"] for a in body["accounts"]]
    assert ids == [a.resource_id for a in api.accounts_of("jdupont")]
    assert all("balances" not in a and "_links" not in a for a in body["accounts"])
    assert set(body["_links"]) == {"self"}
    card = next(a for a in body["accounts"] if a["cashAccountType"] == "CARD")
    assert card["linkedAccount"] in ids and card["accountId"]["other"]["schemeName"] == "CPAN"
    joint = body["accounts"][0]
    assert joint["psuStatus"] == "Account Holder" and joint["usage"] == "PRIV"


@pytest.mark.postgres  # PostgreSQL smoke test of PUT /consents, GET /accounts
def test_consent_restricts_accounts_and_decides_balances_and_links(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    joint, card, personal = api.accounts_of("jdupont")
    response = tpp.call(
        "PUT",
        "consents",
        token=token,
        json_body={
            "balances": [{"iban": joint.iban}],
            "transactions": [{"iban": joint.iban}, _reference(card)],
            "psuIdentity": True,
            "trustedBeneficiaries": False,
        },
    )
    assert response.status_code == 201 and response.content == b""
    assert response.headers["x-request-id"] == response.request.headers["x-request-id"]

    body = tpp.get("accounts", token=token).json()
    schemas.check(body, schemas.ACCOUNTS)
    listed = {a["resourceId"]: a for a in body["accounts"]}
    assert set(listed) == {joint.resource_id, card.resource_id}
    assert personal.resource_id not in listed
    assert {b["balanceType"] for b in listed[joint.resource_id]["balances"]} == {
        "CLBD",
        "XPCD",
        "OTHR",
    }
    assert set(listed[joint.resource_id]["_links"]) == {"balances", "transactions"}
    assert "balances" not in listed[card.resource_id]
    assert set(listed[card.resource_id]["_links"]) == {"transactions"}
    assert body["_links"]["endUserIdentity"]["href"] == f"{API}/end-user-identity"
    assert "beneficiaries" not in body["_links"]


@pytest.mark.postgres  # the consent upsert
def test_a_new_consent_replaces_the_previous_one(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    consent_all(api, tpp, token)
    personal = api.accounts_of("jdupont")[2]
    assert (
        tpp.call(
            "PUT", "consents", token=token, json_body={"balances": [{"iban": personal.iban}]}
        ).status_code
        == 201
    )
    body = tpp.get("accounts", token=token).json()
    assert [a["resourceId"] for a in body["accounts"]] == [personal.resource_id]
    assert set(body["_links"]) == {"self"}
    assert tpp.get("end-user-identity", token=token).status_code == 403
    with api.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(psd2_consents)).scalar_one() == 1


def test_an_empty_consent_shows_accounts_as_before_any_consent(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    consent_all(api, tpp, token)
    assert tpp.call("PUT", "consents", token=token, json_body={}).status_code == 201
    body = tpp.get("accounts", token=token).json()
    assert len(body["accounts"]) == 3
    assert all("balances" not in a and "_links" not in a for a in body["accounts"])


def test_consent_is_per_tpp_organization(api: ApiWorld, tpp: Tpp, pki: TestPki) -> None:
    consent_all(api, tpp, api.token("jdupont"))
    other = pki.issue("PSDFR-ACPR-45002", ("AISP",))
    register_client(api.engine, other, api.clock.now())
    response = api.tpp(other).get(
        "accounts", token=api.token("jdupont", certs=other, client_id=other.org_id)
    )
    assert all("balances" not in a for a in response.json()["accounts"])


@pytest.mark.parametrize(
    "body, message",
    [
        ({"balances": [{"iban": "FR7630006000011234567890189"}]}, "not an account of the PSU"),
        ({"balances": [{"iban": "not-an-iban"}]}, "not an IBAN"),
        (
            {
                "balances": [
                    {
                        "iban": "FR7630006000011234567890189",
                        "other": {"identification": "x", "schemeName": "CPAN"},
                    }
                ]
            },
            "exactly one of iban, other",
        ),
        ({"transactions": {"iban": "FR7630006000011234567890189"}}, "must be an array"),
        ({"psuIdentity": "yes"}, "must be a boolean"),
        ([], "JSON object"),
    ],
)
def test_put_consents_refuses_bad_bodies_and_keeps_the_previous_consent(
    api: ApiWorld, tpp: Tpp, body: Any, message: str
) -> None:
    token = api.token("jdupont")
    consent_all(api, tpp, token)
    before = state(api)
    response = tpp.call("PUT", "consents", token=token, json_body=body)
    assert message in assert_error(response, 400)["message"]
    assert state(api) == before


def test_put_consents_naming_another_psus_account_is_refused(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    foreign = api.accounts_of("cmartin")[0]
    response = tpp.call(
        "PUT", "consents", token=token, json_body={"balances": [{"iban": foreign.iban}]}
    )
    assert_error(response, 400)
    assert state(api) == ([], [])


def test_put_consents_needs_a_json_body(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    response = tpp.call(
        "PUT",
        "consents",
        token=token,
        content=b"balances=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415)
    response = tpp.call(
        "PUT",
        "consents",
        token=token,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400)
    assert state(api) == ([], [])


# --------------------------------------------------------------------------- balances


@pytest.mark.postgres  # PostgreSQL smoke test of GET /balances
def test_balances_of_a_consented_account(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    joint = consent_all(api, tpp, token)[0]
    response = tpp.get(f"accounts/{joint.resource_id}/balances", token=token)
    assert response.status_code == 200
    body = response.json()
    schemas.check(body, schemas.BALANCES)
    clbd = next(b for b in body["balances"] if b["balanceType"] == "CLBD")
    expected = f"{joint.closing_minor / 100:.2f}"
    assert clbd["balanceAmount"] == {"currency": "EUR", "amount": expected}
    assert body["_links"]["parent-list"]["href"] == f"{API}/accounts"
    assert body["_links"]["transactions"]["href"].endswith(f"/{joint.resource_id}/transactions")


def test_balances_without_consent_are_forbidden_and_unknown_accounts_not_found(
    api: ApiWorld, tpp: Tpp
) -> None:
    token = api.token("jdupont")
    joint = api.accounts_of("jdupont")[0]
    assert_error(tpp.get(f"accounts/{joint.resource_id}/balances", token=token), 403)
    assert (
        tpp.call(
            "PUT", "consents", token=token, json_body={"transactions": [{"iban": joint.iban}]}
        ).status_code
        == 201
    )
    before = state(api)
    assert_error(tpp.get(f"accounts/{joint.resource_id}/balances", token=token), 403)
    assert_error(tpp.get("accounts/NOSUCHACCOUNT/balances", token=token), 404)
    foreign = api.accounts_of("cmartin")[0].resource_id
    assert_error(tpp.get(f"accounts/{foreign}/balances", token=token), 404)
    assert_error(tpp.get("accounts/" + "A" * 36 + "/balances", token=token), 400)
    assert state(api) == before


# --------------------------------------------------------------------------- transactions


def _walk(tpp: Tpp, token: str, first: httpx.Response) -> list[dict[str, Any]]:
    """Follow `next` links to the end, checking each page against the schema."""
    seen: list[dict[str, Any]] = []
    response = first
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        schemas.check(body, schemas.TRANSACTIONS)
        # STET GenericLink.href maxLength 140, the paged links included
        assert all(len(link["href"]) <= 140 for link in body["_links"].values()), body["_links"]
        seen.extend(body["transactions"])
        if "next" not in body["_links"]:
            return seen
        response = tpp.follow(body["_links"]["next"]["href"], token=token)


def _booked_since(world: ApiWorld, account_id: str, since: date | None) -> list[int]:
    with world.engine.connect() as conn:
        query = select(bank_transactions.c.entry_reference).where(
            bank_transactions.c.account_id == account_id
        )
        if since is not None:
            query = query.where(bank_transactions.c.imputation_date >= since)
        return sorted(conn.execute(query).scalars(), reverse=True)


@pytest.mark.postgres  # PostgreSQL smoke test of GET /transactions
def test_paging_walks_all_transactions_of_90_days_without_duplicates_or_gaps(
    api: ApiWorld, tpp: Tpp
) -> None:
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    first = tpp.get(f"accounts/{personal.resource_id}/transactions", token=token)
    links = first.json()["_links"]
    assert {"self", "parent-list", "balances", "first", "next", "last"} <= set(links)
    assert "prev" not in links
    seen = _walk(tpp, token, first)
    refs = [int(t["entryReference"]) for t in seen]
    oldest = api.clock.now().astimezone(PARIS).date() - timedelta(days=90)
    assert refs == _booked_since(api, personal.resource_id, oldest)
    assert len(refs) > 100 and len(set(refs)) == len(refs)
    assert all(t["bookingDate"] >= oldest.isoformat() for t in seen if t["status"] == "BOOK")
    last = tpp.follow(links["last"]["href"], token=token).json()
    assert "next" not in last["_links"] and "prev" in last["_links"]
    previous = tpp.follow(last["_links"]["prev"]["href"], token=token).json()
    assert previous["transactions"][-1]["entryReference"] == str(
        int(last["transactions"][0]["entryReference"]) + 1
    )


def test_extended_history_token_reads_the_whole_history(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont", scope="aisp extended_transaction_history")
    personal = consent_all(api, tpp, token)[2]
    first = tpp.get(f"accounts/{personal.resource_id}/transactions", token=token)
    refs = [int(t["entryReference"]) for t in _walk(tpp, token, first)]
    assert refs == _booked_since(api, personal.resource_id, None)
    old = (api.clock.now() - timedelta(days=380)).date().isoformat()
    response = tpp.get(f"accounts/{personal.resource_id}/transactions?dateFrom={old}", token=token)
    assert response.status_code == 200
    listed = _walk(tpp, token, response)
    since = date.fromisoformat(old)
    assert [int(t["entryReference"]) for t in listed] == _booked_since(
        api, personal.resource_id, since
    )
    last_90_days = (api.clock.now() - timedelta(days=90)).date()
    assert len(listed) > len(_booked_since(api, personal.resource_id, last_90_days))


def test_history_older_than_90_days_needs_the_extended_scope(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    before = state(api)
    old = (api.clock.now() - timedelta(days=120)).date().isoformat()
    response = tpp.get(f"accounts/{personal.resource_id}/transactions?dateFrom={old}", token=token)
    assert "extended_transaction_history" in assert_error(response, 403)["message"]
    assert state(api) == before


@pytest.mark.postgres  # date bounds in the transactions SQL
def test_date_range_is_inclusive_from_and_exclusive_to(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    today = api.clock.now().astimezone(PARIS).date()
    start, end = today - timedelta(days=30), today - timedelta(days=20)
    response = tpp.get(
        f"accounts/{personal.resource_id}/transactions"
        f"?dateFrom={start}T00:00:00%2B01:00&dateTo={end}",
        token=token,
    )
    seen = _walk(tpp, token, response)
    assert seen and all(start.isoformat() <= t["bookingDate"] < end.isoformat() for t in seen)
    with api.engine.connect() as conn:
        expected = conn.execute(
            select(func.count())
            .select_from(bank_transactions)
            .where(
                bank_transactions.c.account_id == personal.resource_id,
                bank_transactions.c.imputation_date >= start,
                bank_transactions.c.imputation_date < end,
            )
        ).scalar_one()
    assert len(seen) == expected


@pytest.mark.postgres  # entry-reference bound in the SQL
def test_entry_reference_from_returns_only_newer_entries(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    newest = _booked_since(api, personal.resource_id, None)[0]
    response = tpp.get(
        f"accounts/{personal.resource_id}/transactions?entryReferenceFrom={newest - 5}", token=token
    )
    assert [int(t["entryReference"]) for t in response.json()["transactions"]] == [
        newest - i for i in range(5)
    ]


@pytest.mark.parametrize(
    "query",
    [
        "dateFrom=yesterday",
        "dateTo=2026-02-30",
        "entryReferenceFrom=abc",
        "dateFrom=2026-11-20&dateTo=2026-11-10",
        "dateFrom=2026-11-01&dateFrom=2026-11-02",
        "page=garbage",
    ],
)
def test_bad_transaction_parameters_are_refused(api: ApiWorld, tpp: Tpp, query: str) -> None:
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    before = state(api)
    assert_error(tpp.get(f"accounts/{personal.resource_id}/transactions?{query}", token=token), 400)
    assert state(api) == before


def test_paging_links_work_only_for_their_listing_and_expire(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    _, card, personal = consent_all(api, tpp, token)
    first = tpp.get(f"accounts/{personal.resource_id}/transactions", token=token).json()
    page = _page(first["_links"]["next"]["href"])
    # same token on another account, or with filters added: refused
    assert_error(tpp.get(f"accounts/{card.resource_id}/transactions?page={page}", token=token), 400)
    assert_error(
        tpp.get(
            f"accounts/{personal.resource_id}/transactions?page={page}&dateFrom=2026-11-01",
            token=token,
        ),
        400,
    )
    # a forged page state (MAC kept) is refused
    payload, mac = page.split(".")
    assert_error(
        tpp.get(f"accounts/{personal.resource_id}/transactions?page={payload}A.{mac}", token=token),
        400,
    )
    # another PSU of the same TPP cannot use it
    other = api.token("mdupont")
    assert_error(
        tpp.get(f"accounts/{personal.resource_id}/transactions?page={page}", token=other), 404
    )
    api.clock.advance(minutes=16)
    assert (
        "expired"
        in assert_error(
            tpp.get(f"accounts/{personal.resource_id}/transactions?page={page}", token=token), 400
        )["message"]
    )


def test_transactions_without_consent_are_forbidden(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    joint = api.accounts_of("jdupont")[0]
    tpp.call("PUT", "consents", token=token, json_body={"balances": [{"iban": joint.iban}]})
    before = state(api)
    assert_error(tpp.get(f"accounts/{joint.resource_id}/transactions", token=token), 403)
    assert state(api) == before


# --------------------------------------------------------------------------- identity, payees


@pytest.mark.postgres  # PostgreSQL smoke test of GET /end-user-identity
def test_end_user_identity_needs_psu_identity_in_the_consent(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    assert_error(tpp.get("end-user-identity", token=token), 403)
    consent_all(api, tpp, token, identity=False)
    assert_error(tpp.get("end-user-identity", token=token), 403)
    consent_all(api, tpp, token, identity=True)
    response = tpp.get("end-user-identity", token=token)
    body = response.json()
    schemas.check(body, schemas.END_USER_IDENTITY)
    assert body["connectedPsu"] == "M. Jean Dupont"


@pytest.mark.postgres  # PostgreSQL smoke test of GET /trusted-beneficiaries
def test_trusted_beneficiaries_need_the_consent_flag(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    consent_all(api, tpp, token, beneficiaries=False)
    assert_error(tpp.get("trusted-beneficiaries", token=token), 403)
    consent_all(api, tpp, token, beneficiaries=True)
    body = tpp.get("trusted-beneficiaries", token=token).json()
    schemas.check(body, schemas.BENEFICIARIES)
    names = [b["creditor"]["name"] for b in body["beneficiaries"]]
    assert names == ["SCI Les Tilleuls", "Lucas Dupont", "Cabinet Infirmier Voltaire"]
    assert body["_links"]["self"]["href"] == f"{API}/trusted-beneficiaries"


# --------------------------------------------------------------------------- CBPII


def _funds(world: ApiWorld, account_id: str) -> tuple[Decimal, Decimal]:
    """(expected (instant) balance, authorised overdraft) of a cash account, as the bank holds
    them today: the demo ledger is laid out from the test clock's day, so amounts differ from
    one day to the next."""
    with world.engine.connect() as conn:
        xpcd = conn.execute(
            select(bank_balances.c.amount_minor).where(
                bank_balances.c.account_id == account_id, bank_balances.c.balance_type == "XPCD"
            )
        ).scalar_one()
        overdraft = conn.execute(
            select(bank_accounts.c.overdraft_minor).where(bank_accounts.c.resource_id == account_id)
        ).scalar_one()
    return Decimal(xpcd) / 100, Decimal(overdraft) / 100


@pytest.mark.postgres  # PostgreSQL smoke test of POST /funds-confirmations
def test_funds_confirmation_answers_yes_or_no(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("sroux", "cbpii")
    account = api.accounts_of("sroux")[0]
    expected, overdraft = _funds(api, account.resource_id)
    # The demo student is overdrawn within her overdraft whatever the day (the ledger keeps
    # each account's profile, tests/unit/demo/test_demo_ledger.py), so a yes needs the overdraft.
    assert expected < 0 < expected + overdraft, (expected, overdraft)
    available = expected + overdraft
    request = {
        "paymentCoverageRequestId": "MyCoverage123456",
        "payee": "Café de la Gare",
        "instructedAmount": {"currency": "EUR", "amount": f"{available:.2f}"},
        "accountId": {"iban": account.iban},
    }
    response = tpp.call("POST", "funds-confirmations", token=token, json_body=request)
    assert response.status_code == 200, response.text
    body = response.json()
    schemas.check(body, schemas.FUNDS_CONFIRMATION)
    assert body["request"] == request and body["result"] is True
    request["instructedAmount"]["amount"] = f"{available + Decimal('0.001'):.3f}"
    response = tpp.call("POST", "funds-confirmations", token=token, json_body=request)
    assert response.json()["result"] is False
    assert set(response.json()) == {"request", "result", "_links"}


def test_funds_confirmation_on_a_card_checks_its_linked_account(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont", "cbpii")
    card = api.accounts_of("jdupont")[1]
    expected, overdraft = _funds(api, card.linked_account)
    available = expected + overdraft
    for amount, covered in ((available, True), (available + Decimal("0.01"), False)):
        response = tpp.call(
            "POST",
            "funds-confirmations",
            token=token,
            json_body={
                "paymentCoverageRequestId": "c1",
                "instructedAmount": {"currency": "EUR", "amount": f"{amount:.2f}"},
                "accountId": _reference(card),
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["result"] is covered, amount


def test_funds_confirmation_echoes_the_request_as_sent_issuer_included(
    api: ApiWorld, tpp: Tpp
) -> None:
    """STET v1.4.2 PaymentCoverageReportResource: ``request`` embeds the original request —
    an ``other`` identification's ``issuer`` too (an outside conformance run found it dropped)."""
    token = api.token("jdupont", "cbpii")
    card = api.accounts_of("jdupont")[1]
    reference = _reference(card)
    reference["other"]["issuer"] = "DEMOBANK"
    request = {
        "paymentCoverageRequestId": "c-issuer",
        "payee": "Shop",
        "instructedAmount": {"currency": "EUR", "amount": "1.00"},
        "accountId": reference,
    }
    response = tpp.call("POST", "funds-confirmations", token=token, json_body=request)
    assert response.status_code == 200, response.text
    assert response.json()["request"] == request


@pytest.mark.parametrize(
    "change, status",
    [
        ({"instructedAmount": {"currency": "USD", "amount": "10"}}, 400),
        ({"instructedAmount": {"currency": "EUR", "amount": "-10"}}, 400),
        ({"instructedAmount": {"currency": "EUR", "amount": 10}}, 400),
        ({"paymentCoverageRequestId": "x" * 36}, 400),
        ({"payee": "y" * 71}, 400),
        ({"accountId": {}}, 400),
        ({"accountId": {"iban": "FR7630006000011234567890189"}}, 403),
    ],
)
def test_funds_confirmation_refuses_bad_requests(
    api: ApiWorld, tpp: Tpp, change: dict[str, Any], status: int
) -> None:
    token = api.token("sroux", "cbpii")
    request = {
        "paymentCoverageRequestId": "r1",
        "instructedAmount": {"currency": "EUR", "amount": "10"},
        "accountId": {"iban": api.accounts_of("sroux")[0].iban},
        **change,
    }
    assert_error(tpp.call("POST", "funds-confirmations", token=token, json_body=request), status)


def test_a_cbpii_token_cannot_read_accounts_and_an_aisp_token_cannot_confirm_funds(
    api: ApiWorld, tpp: Tpp
) -> None:
    cbpii = api.token("jdupont", "cbpii")
    aisp = api.token("jdupont", "aisp")
    for path in ("accounts", "end-user-identity", "trusted-beneficiaries"):
        assert "scope aisp" in assert_error(tpp.get(path, token=cbpii), 403)["message"]
    assert_error(tpp.call("PUT", "consents", token=cbpii, json_body={}), 403)
    response = tpp.call(
        "POST",
        "funds-confirmations",
        token=aisp,
        json_body={
            "paymentCoverageRequestId": "r1",
            "instructedAmount": {"currency": "EUR", "amount": "1"},
            "accountId": {"iban": api.accounts_of("jdupont")[0].iban},
        },
    )
    assert "scope cbpii" in assert_error(response, 403)["message"]
    assert state(api) == ([], [])


# --------------------------------------------------------------------------- tokens & certificates


def test_a_token_bound_to_one_qwac_is_refused_over_another_qwac_of_the_same_tpp(
    api: ApiWorld, pki: TestPki
) -> None:
    token = api.token("jdupont")
    second = pki.issue(api.tpp_certs.org_id, ("AISP", "CBPII"), fresh=True)
    # same organization, its own valid QWAC; requests signed with the registered QSealC
    response = api.tpp(second, signer=Signer.of(api.tpp_certs)).get("accounts", token=token)
    assert "another client certificate" in assert_error(response, 401)["message"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert state(api) == ([], [])


def test_expired_revoked_unknown_and_missing_tokens_are_refused(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont", lifetime=timedelta(seconds=60))
    assert tpp.get("accounts", token=token).status_code == 200
    api.clock.advance(61)
    assert_error(tpp.get("accounts", token=token), 401)
    api.clock.set(api.start)
    token = api.token("jdupont")
    with api.engine.begin() as conn:
        conn.execute(update(grants).values(revoked_at=api.clock.now(), revoked_reason="test"))
    assert_error(tpp.get("accounts", token=token), 401)
    assert_error(tpp.get("accounts", token="x" * 43), 401)
    response = assert_error(tpp.get("accounts", token=None), 401)
    assert "Authorization" in response["message"]
    assert_error(
        tpp.get("accounts", token=None, headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401
    )
    assert state(api) == ([], [])


def test_a_suspended_client_is_refused(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    with api.engine.begin() as conn:
        set_status(conn, api.client_id, "suspended", api.clock.now())
    try:
        assert_error(tpp.get("accounts", token=token), 401)
    finally:
        with api.engine.begin() as conn:
            set_status(conn, api.client_id, "active", api.clock.now())


def test_a_call_without_client_certificate_is_refused(api: ApiWorld) -> None:
    token = api.token("jdupont")
    http = api.bank.client(None)
    try:
        tpp = Tpp(http, Signer.of(api.tpp_certs), api.clock)
        assert (
            "client certificate" in assert_error(tpp.get("accounts", token=token), 401)["message"]
        )
    finally:
        http.close()


def test_a_revoked_qsealc_cannot_sign(api: ApiWorld, pki: TestPki) -> None:
    certs = pki.issue("PSDFR-ACPR-45003", ("AISP",), fresh=True)
    register_client(api.engine, certs, api.clock.now())
    tpp = api.tpp(certs)
    token = api.token("jdupont", certs=certs, client_id=certs.org_id)
    assert tpp.get("accounts", token=token).status_code == 200
    pki.revoke(certs.qsealc_pem)
    assert "QSealC" in assert_error(tpp.get("accounts", token=token), 401)["message"]


def test_a_revoked_qwac_cannot_call(api: ApiWorld, pki: TestPki) -> None:
    certs = pki.issue("PSDFR-ACPR-45009", ("AISP",), fresh=True)
    register_client(api.engine, certs, api.clock.now())
    tpp = api.tpp(certs)
    token = api.token("jdupont", certs=certs, client_id=certs.org_id)
    assert tpp.get("accounts", token=token).status_code == 200
    pki.revoke(certs.qwac_pem)
    assert "revoked" in assert_error(tpp.get("accounts", token=token), 401)["message"]


def test_a_client_without_registered_qsealc_cannot_call(api: ApiWorld, pki: TestPki) -> None:
    certs = pki.issue("PSDFR-ACPR-45004", ("AISP",))
    register_client(api.engine, certs, api.clock.now(), with_qsealc=False)
    response = api.tpp(certs).get(
        "accounts", token=api.token("jdupont", certs=certs, client_id=certs.org_id)
    )
    assert "no QSealC is registered" in assert_error(response, 401)["message"]


def test_a_qsealc_of_another_organization_is_refused(api: ApiWorld, pki: TestPki) -> None:
    certs = pki.issue("PSDFR-ACPR-45005", ("AISP",))
    foreign_seal = pki.issue("PSDFR-ACPR-45006", ("AISP",))
    mixed = type(certs)(
        certs.org_id,
        certs.directory,
        certs.qwac_pem,
        certs.qwac_key,
        foreign_seal.qsealc_pem,
        foreign_seal.qsealc_key,
    )
    register_client(api.engine, mixed, api.clock.now())
    response = api.tpp(certs, signer=Signer.of(mixed)).get(
        "accounts", token=api.token("jdupont", certs=certs, client_id=certs.org_id)
    )
    assert "another organization" in assert_error(response, 401)["message"]


# --------------------------------------------------------------------------- HTTP signatures


def test_key_id_may_be_the_kid_the_url_or_serial_and_issuer(api: ApiWorld, pki: TestPki) -> None:
    certs = pki.issue("PSDFR-ACPR-45007", ("AISP",))
    url = "https://tpp.example/certs/qsealc.pem"
    register_client(api.engine, certs, api.clock.now(), qsealc_kid="seal-2026", qsealc_url=url)
    token = api.token("jdupont", certs=certs, client_id=certs.org_id)
    owned = sorted(a.resource_id for a in api.accounts_of("jdupont"))
    for key_id in ("seal-2026", url, None):
        signer = Signer.of(certs, key_id)
        response = api.tpp(certs, signer).get("accounts", token=token)
        assert response.status_code == 200, key_id
        assert sorted(a["resourceId"] for a in response.json()["accounts"]) == owned, key_id
    assert_error(
        api.tpp(certs, Signer.of(certs, "https://attacker.example/seal.pem")).get(
            "accounts", token=token
        ),
        401,
    )


def test_a_kid_written_like_a_serial_and_issuer_key_id_resolves_by_exact_match(
    api: ApiWorld, pki: TestPki
) -> None:
    """Registration ``kid`` of the ``SN=<hex>,CA=<issuer DN>`` form (spaces in the DN), as
    TPPs reuse their keyId: accepted and matched exactly first — even when it names no real
    serial — and a keyId that is not exactly it still has to name the certificate."""
    certs = pki.issue("PSDFR-ACPR-45008", ("AISP",))
    kid = "SN=DEAD,CA=CN=Some Other QTSP, O=Elsewhere, C=FR"
    register_client(api.engine, certs, api.clock.now(), qsealc_kid=kid)
    token = api.token("jdupont", certs=certs, client_id=certs.org_id)
    response = api.tpp(certs, Signer.of(certs, kid)).get("accounts", token=token)
    assert response.status_code == 200, response.text
    near = "SN=DEAD,CA=CN=Some Other QTSP"
    assert_error(api.tpp(certs, Signer.of(certs, near)).get("accounts", token=token), 401)


def test_unsigned_requests_are_refused(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    response = tpp.get(
        "accounts", token=token, after_signing=lambda headers: headers.pop("Signature")
    )
    assert "Signature" in assert_error(response, 401)["message"]


def test_tampered_requests_are_refused_and_change_nothing(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    joint = api.accounts_of("jdupont")[0]
    body = {"balances": [{"iban": joint.iban}]}

    def changed_ip(headers: dict[str, str]) -> None:
        headers["PSU-IP-Address"] = "203.0.113.9"

    # body changed after signing (Digest no longer matches)
    assert_error(
        tpp.call("PUT", "consents", token=token, json_body=body, send_body=b'{"psuIdentity":true}'),
        401,
    )
    # body and Digest changed: the signature covers the Digest header
    forged = b'{"psuIdentity":true}'
    from stetgate.httpsig import compute_digest

    assert_error(
        tpp.call(
            "PUT",
            "consents",
            token=token,
            json_body=body,
            send_body=forged,
            after_signing=lambda h: h.update(Digest=compute_digest(forged)),
        ),
        401,
    )
    # a signed header changed
    assert_error(tpp.get("accounts", token=token, after_signing=changed_ip), 401)
    # another path than the one signed
    assert_error(tpp.get("accounts", token=token, send_target=f"{API}/end-user-identity"), 401)
    assert state(api) == ([], [])


def test_signatures_must_cover_the_required_headers(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    for signed in (["(request-target)"], ["(request-target)", "x-request-id"]):
        response = tpp.get("accounts", token=token, sign=signed)
        assert_error(response, 401)
    joint = api.accounts_of("jdupont")[0]
    response = tpp.call(
        "PUT",
        "consents",
        token=token,
        sign=["(request-target)", "x-request-id", "psu-ip-address"],
        json_body={"balances": [{"iban": joint.iban}]},
    )
    assert "digest" in assert_error(response, 401)["message"]
    assert state(api) == ([], [])


def test_wrong_key_and_unknown_key_id_are_refused(api: ApiWorld, tpp: Tpp, pki: TestPki) -> None:
    token = api.token("jdupont")
    other = pki.issue("PSDFR-ACPR-45008", ("AISP",))
    registered_key_id = Signer.of(api.tpp_certs).key_id
    wrong_key = Signer(Signer.of(other).key, registered_key_id)
    assert (
        "does not verify"
        in assert_error(tpp.get("accounts", token=token, signer=wrong_key), 401)["message"]
    )
    assert_error(tpp.get("accounts", token=token, signer=Signer.of(other)), 401)


def test_a_stale_signed_date_is_refused(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    stale = format_datetime(api.clock.now() - timedelta(seconds=400), usegmt=True)
    response = tpp.get("accounts", token=token, headers={"Date": stale})
    assert "Date" in assert_error(response, 401)["message"]


def test_only_rsa_sha256_is_accepted(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")

    def hmac_algorithm(headers: dict[str, str]) -> None:
        headers["Signature"] = headers["Signature"].replace(
            'algorithm="rsa-sha256"', 'algorithm="hmac-sha256"'
        )

    assert_error(tpp.get("accounts", token=token, after_signing=hmac_algorithm), 401)


# --------------------------------------------------------------------------- HTTP-level rules


def test_x_request_id_is_required_and_echoed_on_errors(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    response = tpp.get(
        "accounts", token=token, after_signing=lambda headers: headers.pop("X-Request-ID")
    )
    assert "X-Request-ID" in assert_error(response, 400, echoed=False)["message"]
    assert_error(tpp.get("accounts/UNKNOWN/balances", token=token), 404)


def test_psu_ip_address_must_be_an_ip_address(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    assert (
        "PSU-IP-Address"
        in assert_error(tpp.get("accounts", token=token, psu_ip="not-an-ip"), 400)["message"]
    )
    assert tpp.get("accounts", token=token, psu_ip="2001:db8::7").status_code == 200
    assert state(api) == ([], [])


def test_content_negotiation_unknown_paths_and_methods(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    assert_error(tpp.get("accounts", token=token, headers={"Accept": "text/html"}), 406)
    assert (
        tpp.get("accounts", token=token, headers={"Accept": "application/json"}).status_code == 200
    )
    assert_error(tpp.call("POST", "accounts", token=token, json_body={}), 405)
    response = tpp.call("DELETE", "consents", token=token)
    assert_error(response, 405)
    assert response.headers["allow"] == "PUT"
    assert_error(tpp.get("no-such-thing", token=token), 404)
    assert state(api) == ([], [])


@pytest.mark.parametrize("resource_id", ["a%0Ab", "%0A", "a%0D%0Ab", "%0A%C2%91%26a%F1%AB%B4%81"])
def test_a_resource_id_with_a_newline_is_answered_in_the_stet_format(
    api: ApiWorld, tpp: Tpp, resource_id: str
) -> None:
    """An encoded line break used to take the request out of the API (Starlette's mount
    pattern stops at a newline): a plain-text 404 without X-Request-ID (found by fuzzing)."""
    token = api.token("jdupont")
    for path in (f"accounts/{resource_id}/balances", f"accounts/{resource_id}/transactions"):
        response = tpp.get(path, token=token)
        assert response.status_code in (400, 404), response.text
        assert_error(response, response.status_code)


def test_the_openapi_document_is_served(api: ApiWorld) -> None:
    http = api.bank.client(None)
    try:
        document = http.get(f"{API}/openapi.json").json()
    finally:
        http.close()
    assert document["openapi"].startswith("3.0")
    assert set(document["paths"]) == {
        "/accounts",
        "/accounts/{accountResourceId}/balances",
        "/accounts/{accountResourceId}/transactions",
        "/consents",
        "/end-user-identity",
        "/trusted-beneficiaries",
        "/funds-confirmations",
    }


def test_an_unexpected_failure_is_a_stet_500_without_details(
    api: ApiWorld, tpp: Tpp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = api.token("jdupont")
    stet_api = next(r for r in api.bank.app.routes if getattr(r, "path", "") == API).app

    def explode(psu_id: str) -> list[Any]:
        raise RuntimeError(" ".join(("database", "exploded", "with", "secret", "detail")))

    monkeypatch.setattr(stet_api.aisp.bank, "accounts_of", explode)
    with caplog.at_level(logging.ERROR, logger="stetgate.psd2"):
        response = tpp.get("accounts", token=token)
    body = assert_error(response, 500)
    assert "secret detail" not in response.text and "exploded" not in body["message"]
    assert "RuntimeError" in caplog.text and response.headers["x-request-id"] in caplog.text
    assert "secret detail" not in caplog.text and token not in caplog.text


def test_counters_are_not_touched_by_refused_calls(api: ApiWorld, tpp: Tpp) -> None:
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    for _ in range(6):
        assert_error(
            tpp.get(
                f"accounts/{personal.resource_id}/transactions?dateFrom=bad",
                token=token,
                psu_ip=None,
            ),
            400,
        )
    with api.engine.connect() as conn:
        assert conn.execute(select(psd2_unattended_access)).all() == []
