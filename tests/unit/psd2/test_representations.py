"""STET JSON of bank values: amounts as strings, ids percent-encoded in links."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from stetgate.bank.backend import Balance, Money, Transaction
from stetgate.psd2.representations import account_path, balance, transaction


@pytest.mark.parametrize(
    "minor, currency, text",
    [
        (0, "EUR", "0.00"),
        (5, "EUR", "0.05"),
        (-15000, "EUR", "-150.00"),
        (123456, "EUR", "1234.56"),
        (-1, "EUR", "-0.01"),
        (1500, "JPY", "1500"),
        (-7, "JPY", "-7"),
    ],
)
def test_amounts_are_decimal_strings_with_the_currency_digits(
    minor: int, currency: str, text: str
) -> None:
    assert Money(minor, currency).stet_amount() == text


def test_account_paths_encode_what_the_stet_id_pattern_allows() -> None:
    assert account_path("A1B2") == "/accounts/A1B2"
    assert account_path("my acc/1?(x)") == "/accounts/my%20acc%2F1%3F%28x%29"


def test_balance_and_transaction_members() -> None:
    assert balance(
        Balance(
            "Solde",
            Money(-15000, "EUR"),
            "CLBD",
            datetime(2026, 11, 26, 5, tzinfo=UTC),
            date(2026, 11, 26),
            "42",
        )
    ) == {
        "name": "Solde",
        "balanceAmount": {"currency": "EUR", "amount": "-150.00"},
        "balanceType": "CLBD",
        "lastChangeDateTime": "2026-11-26T05:00:00+00:00",
        "referenceDate": "2026-11-26",
        "lastCommittedTransaction": "42",
    }
    pending = transaction(
        Transaction(
            "T1",
            7,
            Money(1999, "EUR"),
            "DBIT",
            "PDNG",
            None,
            None,
            date(2026, 11, 25),
            ("CB LIDL 25/11",),
        )
    )
    assert pending == {
        "resourceId": "T1",
        "entryReference": "7",
        "transactionAmount": {"currency": "EUR", "amount": "19.99"},
        "creditDebitIndicator": "DBIT",
        "status": "PDNG",
        "transactionDate": "2026-11-25",
        "remittanceInformation": ["CB LIDL 25/11"],
    }
