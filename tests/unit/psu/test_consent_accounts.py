"""How the consent page names the accounts and cards concerned: the holder's name for the
account and the last four characters of its number — never the whole IBAN or card number."""

from __future__ import annotations

from stetgate.bank.backend import Account, OtherAccountId
from stetgate.psu.pages import _account_label


def _account(**overrides: object) -> Account:
    values: dict[str, object] = dict(
        resource_id="acc-1",
        bic="BANKFRPP",
        iban="FR76 3000 6000 0112 3456 7890 189",
        other=None,
        currency="EUR",
        name="Compte courant",
        cash_account_type="CACC",
        usage="PRIV",
        product="Compte",
        psu_status="Account Holder",
    )
    values.update(overrides)
    return Account(**values)  # type: ignore[arg-type]


def test_an_account_shows_its_name_and_the_end_of_its_iban_only() -> None:
    label = _account_label(_account())
    assert label == "Compte courant (…0189)"
    assert "FR76" not in label and "3000" not in label


def test_a_card_shows_the_end_of_its_masked_number() -> None:
    card = _account(
        iban=None,
        other=OtherAccountId("5134XXXXXXXX1234", "CPAN"),
        name="Carte Visa",
        cash_account_type="CARD",
    )
    assert _account_label(card) == "Carte Visa (…1234)"


def test_an_account_without_a_number_shows_its_name() -> None:
    assert _account_label(_account(iban=None, other=None)) == "Compte courant"
