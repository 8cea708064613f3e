"""Bank values → STET v1.4.2 JSON (HAL), field names exactly as the standard spells them
(STET v1.4.2 Part II: AccountResource, BalanceResource, TransactionResource, Beneficiary,
AccountIdentification, AmountType). Dates are ISO 8601 ``YYYY-MM-DD``, date-times RFC 3339
with offset, amounts decimal strings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from stetgate.bank.backend import (
    Account,
    Balance,
    Beneficiary,
    EndUserIdentity,
    Money,
    Transaction,
)
from stetgate.psd2.errors import HAL_JSON
from stetgate.serving.request_id import REQUEST_ID_HEADER

BASE_PATH = "/stet/psd2/v1.4.2"

Json = dict[str, Any]


def link(path: str) -> Json:
    """A HAL link to ``path`` (already percent-encoded) under the API's base path."""
    return {"href": BASE_PATH + path}


def account_path(resource_id: str) -> str:
    """``/accounts/{accountResourceId}``: the STET id pattern allows spaces, ``/``, ``?`` …,
    which a link must percent-encode."""
    return f"/accounts/{quote(resource_id, safe='')}"


def amount(money: Money) -> Json:
    return {"currency": money.currency, "amount": money.stet_amount()}


def account_id(account: Account) -> Json:
    """STET AccountIdentification: ``iban`` or ``other``, plus ``currency``."""
    identification: Json = {}
    if account.iban is not None:
        identification["iban"] = account.iban
    elif account.other is not None:
        other: Json = {
            "identification": account.other.identification,
            "schemeName": account.other.scheme_name,
        }
        if account.other.issuer:
            other["issuer"] = account.other.issuer
        identification["other"] = other
    identification["currency"] = account.currency
    return identification


def balance(value: Balance) -> Json:
    body: Json = {
        "name": value.name,
        "balanceAmount": amount(value.amount),
        "balanceType": value.balance_type,
    }
    if value.last_change_at is not None:
        body["lastChangeDateTime"] = value.last_change_at.isoformat(timespec="seconds")
    if value.reference_date is not None:
        body["referenceDate"] = value.reference_date.isoformat()
    if value.last_committed_transaction is not None:
        body["lastCommittedTransaction"] = value.last_committed_transaction
    return body


def account(value: Account, balances: Sequence[Balance] | None, links: Mapping[str, Json]) -> Json:
    body: Json = {
        "resourceId": value.resource_id,
        "bicFi": value.bic,
        "accountId": account_id(value),
        "name": value.name,
    }
    if value.details:
        body["details"] = value.details
    if value.linked_account:
        body["linkedAccount"] = value.linked_account
    body.update(
        usage=value.usage,
        cashAccountType=value.cash_account_type,
        product=value.product,
        currency=value.currency,
        psuStatus=value.psu_status,
    )
    if balances is not None:
        body["balances"] = [balance(b) for b in balances]
    if links:
        body["_links"] = dict(links)
    return body


def transaction(value: Transaction) -> Json:
    body: Json = {
        "resourceId": value.resource_id,
        "entryReference": str(value.entry_reference),
        "transactionAmount": amount(value.amount),
        "creditDebitIndicator": value.credit_debit,
        "status": value.status,
    }
    if value.booking_date is not None:
        body["bookingDate"] = value.booking_date.isoformat()
    if value.value_date is not None:
        body["valueDate"] = value.value_date.isoformat()
    if value.transaction_date is not None:
        body["transactionDate"] = value.transaction_date.isoformat()
    body["remittanceInformation"] = list(value.remittance_information)
    return body


def beneficiary(value: Beneficiary) -> Json:
    creditor: Json = {"name": value.creditor_name}
    if value.creditor_address is not None:
        creditor["postalAddress"] = {
            "country": value.creditor_address.country,
            "addressLine": list(value.creditor_address.address_lines),
        }
    body: Json = {"id": value.id}
    if value.creditor_bic:
        body["creditorAgent"] = {"bicFi": value.creditor_bic}
    body.update(creditor=creditor, creditorAccount={"iban": value.creditor_iban})
    return body


def end_user_identity(value: EndUserIdentity) -> Json:
    return {"connectedPsu": value.connected_psu, "_links": {"self": link("/end-user-identity")}}


def hal_response(body: Json, request_id: str, status: int = 200) -> Response:
    """``application/hal+json; charset=utf-8``, X-Request-ID echoed, never cached."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(
        content,
        status_code=status,
        media_type=HAL_JSON,
        headers={REQUEST_ID_HEADER: request_id, "Cache-Control": "no-store"},
    )
