"""PaymentCoverageRequestResource validation (STET v1.4.2 §6.4)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from stetgate.psd2.cbpii import parse_coverage_request
from stetgate.psd2.errors import BadRequest

VALID = {
    "paymentCoverageRequestId": "MyCoverage123456",
    "payee": "Merchant",
    "instructedAmount": {"currency": "EUR", "amount": "12.345"},
    "accountId": {"iban": "FR7630006000011234567890189", "currency": "EUR"},
}


def test_a_valid_request_is_parsed_and_echoed() -> None:
    request = parse_coverage_request(VALID)
    assert request.amount == Decimal("12.345") and request.currency == "EUR"
    assert request.account.iban == "FR7630006000011234567890189"
    assert request.echo == VALID


def test_an_account_may_be_a_card_number() -> None:
    request = parse_coverage_request(
        {
            **VALID,
            "accountId": {"other": {"identification": "497010XXXXXX1234", "schemeName": "CPAN"}},
        }
    )
    assert request.account.other_identification == "497010XXXXXX1234"


@pytest.mark.parametrize(
    "change",
    [
        {"paymentCoverageRequestId": ""},
        {"paymentCoverageRequestId": 5},
        {"payee": 3},
        {"instructedAmount": None},
        {"instructedAmount": {"currency": "eur", "amount": "1"}},
        {"instructedAmount": {"currency": "EUR", "amount": "1e3"}},
        {"instructedAmount": {"currency": "EUR", "amount": "NaN"}},
        {"instructedAmount": {"currency": "EUR", "amount": "1.0001"}},
        {"accountId": {"iban": "FR76", "other": {"identification": "x", "schemeName": "y"}}},
        {"accountId": {"other": {"identification": "x"}}},
        {"accountId": {"iban": "FR7630006000011234567890189", "currency": "euro"}},
    ],
)
def test_invalid_requests_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_coverage_request({**VALID, **change})


def test_missing_members_are_refused() -> None:
    for member in ("paymentCoverageRequestId", "instructedAmount", "accountId"):
        body = {k: v for k, v in VALID.items() if k != member}
        with pytest.raises(BadRequest):
            parse_coverage_request(body)
    with pytest.raises(BadRequest):
        parse_coverage_request([VALID])
