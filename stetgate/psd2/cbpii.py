"""CBPII: STET v1.4.2 ``POST /funds-confirmations`` (docs/decisions.md#funds-confirmation).

The card-based payment instrument issuer asks whether an amount is covered on the PSU's account
right now; the bank answers yes or no only — no balance, nothing blocked (BPCE "Disponibilité
des fonds"). Body ``PaymentCoverageRequestResource``: ``paymentCoverageRequestId`` (≤ 35),
``payee`` (optional, ≤ 70), ``instructedAmount`` ``{currency, amount}`` in the account's
currency (no FX), ``accountId`` (``iban`` or ``other``). The token is an authorization-code
token of scope ``cbpii`` (docs/decisions.md#scopes-and-roles), so the account must be one of
that PSU's (403 otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stetgate.bank.backend import BankBackend, CurrencyMismatch, UnknownAccount
from stetgate.psd2.callers import ApiCaller
from stetgate.psd2.consents import AccountReference, parse_account_reference
from stetgate.psd2.errors import BadRequest, Forbidden
from stetgate.psd2.representations import Json, link

AMOUNT = re.compile(r"[0-9]{1,14}(?:\.[0-9]{1,3})?")
CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class PaymentCoverageRequest:
    request_id: str
    payee: str | None
    currency: str
    amount: Decimal
    account: AccountReference
    echo: Json
    """The request as the response's ``request`` member repeats it."""


def parse_coverage_request(body: Any) -> PaymentCoverageRequest:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object (PaymentCoverageRequestResource)")
    request_id = body.get("paymentCoverageRequestId")
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= 35:
        raise BadRequest("paymentCoverageRequestId must be a string of 1-35 characters")
    payee = body.get("payee")
    if payee is not None and (not isinstance(payee, str) or len(payee) > 70):
        raise BadRequest("payee must be a string of at most 70 characters")
    instructed = body.get("instructedAmount")
    if not isinstance(instructed, dict):
        raise BadRequest("instructedAmount {currency, amount} is required")
    currency, amount = instructed.get("currency"), instructed.get("amount")
    if not isinstance(currency, str) or CURRENCY.fullmatch(currency) is None:
        raise BadRequest("instructedAmount.currency must be an ISO 4217 code")
    if not isinstance(amount, str) or AMOUNT.fullmatch(amount) is None:
        raise BadRequest('instructedAmount.amount must be a positive decimal string, e.g. "12.25"')
    if "accountId" not in body:
        raise BadRequest("accountId is required")
    account = parse_account_reference(body["accountId"], "accountId")
    echo: Json = {"paymentCoverageRequestId": request_id}
    if payee is not None:
        echo["payee"] = payee
    echo["instructedAmount"] = {"currency": currency, "amount": amount}
    echo["accountId"] = _reference_json(account)
    return PaymentCoverageRequest(request_id, payee, currency, Decimal(amount), account, echo)


def _reference_json(reference: AccountReference) -> Json:
    body: Json = {}
    if reference.iban is not None:
        body["iban"] = reference.iban
    else:
        other: Json = {
            "identification": reference.other_identification,
            "schemeName": reference.other_scheme,
        }
        if reference.other_issuer is not None:
            other["issuer"] = reference.other_issuer
        body["other"] = other
    if reference.currency is not None:
        body["currency"] = reference.currency
    return body


@dataclass
class FundsConfirmation:
    bank: BankBackend

    def confirm(self, caller: ApiCaller, body: Any) -> Json:
        request = parse_coverage_request(body)
        account = next(
            (a for a in self.bank.accounts_of(caller.psu_id) if request.account.designates(a)), None
        )
        if account is None:
            raise Forbidden("accountId is not an account of the PSU who authorized this token")
        try:
            result = self.bank.funds_available(
                caller.psu_id, account.resource_id, request.amount, request.currency
            )
        except CurrencyMismatch as exc:
            raise BadRequest(str(exc)) from None
        except UnknownAccount:
            raise Forbidden(
                "accountId is not an account of the PSU who authorized this token"
            ) from None
        return {
            "request": request.echo,
            "result": result,
            "_links": {"self": link("/funds-confirmations")},
        }
