"""PUT /consents bodies, their resolution onto the PSU's accounts, and their storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from stetgate.bank.backend import Account, OtherAccountId
from stetgate.psd2.consents import (
    Consent,
    parse_consent_request,
    replace_consent,
    resolve_consent,
)
from stetgate.psd2.errors import BadRequest
from stetgate.store.db import make_engine
from stetgate.store.schema import psd2_consents

pytestmark = pytest.mark.postgres  # consent store (upsert)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
IBAN = "FR7630006000011234567890189"
CURRENT = Account(
    "A1",
    "STGTFRPPXXX",
    IBAN,
    None,
    "EUR",
    "Compte",
    "CACC",
    "PRIV",
    "Compte de dépôt",
    "Account Holder",
)
CARD = Account(
    "C1",
    "STGTFRPPXXX",
    None,
    OtherAccountId("497010XXXXXX1234", "CPAN", "STGT"),
    "EUR",
    "Carte",
    "CARD",
    "PRIV",
    "Visa",
    "Account Holder",
    linked_account="A1",
)


def test_a_mixed_consent_is_resolved_to_account_ids() -> None:
    request = parse_consent_request(
        {
            "balances": [{"iban": IBAN, "currency": "EUR"}],
            "transactions": [
                {"iban": IBAN},
                {"other": {"identification": "497010XXXXXX1234", "schemeName": "CPAN"}},
            ],
            "psuIdentity": True,
        }
    )
    consent = resolve_consent(request, [CURRENT, CARD])
    assert consent == Consent(frozenset({"A1"}), frozenset({"A1", "C1"}), False, True)
    assert consent.accounts == {"A1", "C1"}


def test_absent_or_null_members_mean_nothing() -> None:
    for body in ({}, {"balances": None, "psuIdentity": None}):
        assert resolve_consent(parse_consent_request(body), [CURRENT]) == Consent()


@pytest.mark.parametrize(
    "body",
    [
        {"balances": [{"iban": "FR7699999000000000000000000"}]},  # not the PSU's
        {"balances": [{"iban": IBAN, "currency": "USD"}]},
        {"transactions": [{"other": {"identification": "497010XXXXXX1234", "schemeName": "MPAN"}}]},
    ],
)
def test_an_account_the_psu_does_not_hold_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="not an account of the PSU"):
        resolve_consent(parse_consent_request(body), [CURRENT, CARD])


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {"balances": "all"},
        {"balances": [IBAN]},
        {"balances": [{}]},
        {"balances": [{"iban": IBAN, "other": {"identification": "x", "schemeName": "y"}}]},
        {"balances": [{"iban": "fr76 3000"}]},
        {"balances": [{"other": "x"}]},
        {"balances": [{"other": {"identification": "", "schemeName": "CPAN"}}]},
        {"balances": [{"other": {"identification": "x", "schemeName": "CPAN", "issuer": 1}}]},
        {"balances": [{"iban": IBAN}] * 101},
        {"trustedBeneficiaries": "true"},
        {"psuIdentity": 1},
    ],
)
def test_malformed_bodies_are_refused(body: Any) -> None:
    with pytest.raises(BadRequest):
        parse_consent_request(body)


def test_replace_consent_keeps_one_row_per_psu_and_organization(db_url: str) -> None:
    engine = make_engine(db_url, 1)
    try:
        with engine.begin() as conn:
            replace_consent(
                conn,
                "p1",
                "ORG1",
                Consent(frozenset({"A1", "B2"}), frozenset({"A1"}), True, False),
                NOW,
            )
            replace_consent(conn, "p1", "ORG2", Consent(psu_identity=True), NOW)
        later = NOW + timedelta(hours=1)
        with engine.begin() as conn:
            replace_consent(conn, "p1", "ORG1", Consent(transactions=frozenset({"B2"})), later)
        with engine.connect() as conn:
            rows = {r.org_id: r for r in conn.execute(select(psd2_consents))}
        assert set(rows) == {"ORG1", "ORG2"}
        first = rows["ORG1"]
        assert (first.balances, first.transactions, first.trusted_beneficiaries) == (
            [],
            ["B2"],
            False,
        )
        assert first.created_at == NOW and first.updated_at == later
    finally:
        engine.dispose()
