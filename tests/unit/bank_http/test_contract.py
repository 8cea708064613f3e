"""The contract's document and models agree with each other and with the demo service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from pydantic import ValidationError

from stetgate.bank.backend import Balance, Money
from stetgate.bank_http import OPENAPI_FILE
from stetgate.bank_http.contract import VERSION_PREFIX, AmountModel, BalanceModel, dump
from stetgate.demo.bank_service import BankService


def test_the_openapi_document_is_3_1_and_lists_exactly_the_services_operations() -> None:
    document = yaml.safe_load(OPENAPI_FILE.read_text())
    assert document["openapi"].startswith("3.1")
    assert document["servers"][0]["url"].endswith(VERSION_PREFIX)
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = {
        (route.method, route.path)
        for route in BankService(None).routes()  # type: ignore[arg-type]
        if route.path != "/health"
    }
    assert documented == served


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("-150.00", "EUR", -15000), ("0.5", "EUR", 50), ("12", "JPY", 12), ("1.234", "EUR", None)],
)
def test_amounts_are_decimal_strings_with_at_most_the_currencys_digits(
    amount: str, currency: str, minor: int | None
) -> None:
    model = AmountModel(amount=amount, currency=currency)
    if minor is None:
        with pytest.raises(ValueError, match="fractional digits"):
            model.money()
    else:
        assert model.money() == Money(minor, currency)


@pytest.mark.parametrize("amount", [1.5, "1e3", "1,50", " 1.50", "1.5000"])
def test_an_amount_that_is_not_a_decimal_string_is_refused(amount: object) -> None:
    with pytest.raises(ValidationError):
        AmountModel.model_validate({"amount": amount, "currency": "EUR"})


def test_a_balance_round_trips_and_a_naive_timestamp_is_refused() -> None:
    balance = Balance(
        "Solde", Money(-1234, "EUR"), "CLBD", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    assert BalanceModel.model_validate_json(dump(BalanceModel.of(balance))).value() == balance
    naive = BalanceModel.model_validate_json(
        b'{"name":"x","amount":{"amount":"1.00","currency":"EUR"},"balanceType":"CLBD",'
        b'"lastChangeDateTime":"2026-01-02T03:04:05"}'
    )
    with pytest.raises(ValueError, match="offset"):
        naive.value()
