"""The core-banking contract ``/core-banking/v1`` on the wire: pydantic models and their
mapping to and from the port values of `stetgate.bank.backend`.

Both sides use these models: `stetgate.bank_http.client.HttpBank` validates every answer with
them (strict types, required fields; unknown fields are ignored so a backend may add members in
a minor version), and the demo bank's service (`stetgate.demo.bank_service`) writes its
answers with them — so the two cannot drift apart. The normative description is
``openapi.yaml`` next to this module (docs/bank-integration.md explains it).

Amounts travel as decimal strings with the currency (as STET AmountType does, never a JSON
number: no binary floating point); a value with more fractional digits than its currency has
(ISO 4217 minor units) is refused rather than rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from stetgate.bank.backend import (
    CURRENCY_EXPONENTS,
    Account,
    Balance,
    Beneficiary,
    EndUserIdentity,
    Money,
    OtherAccountId,
    PostalAddress,
    Transaction,
    TransactionPage,
)

VERSION_PREFIX = "/core-banking/v1"
JSON = "application/json"

AmountText = Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,18}(\.[0-9]{1,3})?$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class _Wire(BaseModel):
    # camelCase on the wire, snake_case in Python (a generator rather than per-field aliases
    # keeps the constructors' keyword names the field names for mypy).
    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        populate_by_name=True,
    )


class AmountModel(_Wire):
    amount: AmountText
    currency: CurrencyCode

    def money(self) -> Money:
        exponent = CURRENCY_EXPONENTS.get(self.currency, 2)
        scaled = Decimal(self.amount).scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"more than {exponent} fractional digits for {self.currency}")
        return Money(int(scaled), self.currency)

    @classmethod
    def of(cls, money: Money) -> AmountModel:
        return cls(amount=money.stet_amount(), currency=money.currency)


class OtherIdModel(_Wire):
    identification: Text
    scheme_name: str
    issuer: str | None = None


class BalanceModel(_Wire):
    name: Text
    amount: AmountModel
    balance_type: Literal["CLBD", "XPCD", "OTHR"]
    last_change_date_time: datetime | None = None
    reference_date: date | None = None
    last_committed_transaction: str | None = None

    def value(self) -> Balance:
        if self.last_change_date_time is not None and self.last_change_date_time.tzinfo is None:
            raise ValueError("lastChangeDateTime must carry its offset (RFC 3339)")
        return Balance(
            name=self.name,
            amount=self.amount.money(),
            balance_type=self.balance_type,
            last_change_at=self.last_change_date_time,
            reference_date=self.reference_date,
            last_committed_transaction=self.last_committed_transaction,
        )

    @classmethod
    def of(cls, balance: Balance) -> BalanceModel:
        return cls(
            name=balance.name,
            amount=AmountModel.of(balance.amount),
            balance_type=balance.balance_type,
            last_change_date_time=balance.last_change_at,
            reference_date=balance.reference_date,
            last_committed_transaction=balance.last_committed_transaction,
        )


class AccountModel(_Wire):
    resource_id: Text
    bic: Text
    iban: str | None = None
    other: OtherIdModel | None = None
    currency: CurrencyCode
    name: Text
    cash_account_type: Literal["CACC", "CARD"]
    usage: Literal["PRIV", "ORGA"]
    product: Text
    psu_status: Text
    details: str | None = None
    linked_account: str | None = None
    balances: list[BalanceModel] | None = None
    """Present (possibly empty) only for the accounts the request asked balances of."""

    def value(self) -> Account:
        if (self.iban is None) == (self.other is None):
            raise ValueError("an account has exactly one of iban and other")
        return Account(
            resource_id=self.resource_id,
            bic=self.bic,
            iban=self.iban,
            other=None
            if self.other is None
            else OtherAccountId(
                self.other.identification, self.other.scheme_name, self.other.issuer
            ),
            currency=self.currency,
            name=self.name,
            cash_account_type=self.cash_account_type,
            usage=self.usage,
            product=self.product,
            psu_status=self.psu_status,
            details=self.details,
            linked_account=self.linked_account,
        )

    @classmethod
    def of(cls, account: Account, balances: Sequence[Balance] | None = None) -> AccountModel:
        other = account.other
        return cls(
            resource_id=account.resource_id,
            bic=account.bic,
            iban=account.iban,
            other=None
            if other is None
            else OtherIdModel(
                identification=other.identification,
                scheme_name=other.scheme_name,
                issuer=other.issuer,
            ),
            currency=account.currency,
            name=account.name,
            cash_account_type=account.cash_account_type,
            usage=account.usage,
            product=account.product,
            psu_status=account.psu_status,
            details=account.details,
            linked_account=account.linked_account,
            balances=None if balances is None else [BalanceModel.of(b) for b in balances],
        )


class AccountList(_Wire):
    accounts: list[AccountModel]


class BalancesAnswer(_Wire):
    balances: dict[Text, list[BalanceModel]]
    """Per account id: only the requested accounts the PSU holds."""


class TransactionModel(_Wire):
    resource_id: Text
    entry_reference: int = Field(ge=0)
    amount: AmountModel
    credit_debit_indicator: Literal["CRDT", "DBIT"]
    status: Literal["BOOK", "PDNG"]
    booking_date: date | None = None
    value_date: date | None = None
    transaction_date: date | None = None
    remittance_information: list[str] = Field(default_factory=list)

    def value(self) -> Transaction:
        money = self.amount.money()
        if money.minor < 0:
            raise ValueError("a transaction amount is positive (the sign is creditDebitIndicator)")
        return Transaction(
            resource_id=self.resource_id,
            entry_reference=self.entry_reference,
            amount=money,
            credit_debit=self.credit_debit_indicator,
            status=self.status,
            booking_date=self.booking_date,
            value_date=self.value_date,
            transaction_date=self.transaction_date,
            remittance_information=tuple(self.remittance_information),
        )

    @classmethod
    def of(cls, transaction: Transaction) -> TransactionModel:
        return cls(
            resource_id=transaction.resource_id,
            entry_reference=transaction.entry_reference,
            amount=AmountModel.of(transaction.amount),
            credit_debit_indicator=transaction.credit_debit,
            status=transaction.status,
            booking_date=transaction.booking_date,
            value_date=transaction.value_date,
            transaction_date=transaction.transaction_date,
            remittance_information=list(transaction.remittance_information),
        )


class TransactionPageModel(_Wire):
    transactions: list[TransactionModel]
    total: int = Field(ge=0)
    snapshot_entry: int | None
    """Required (null when the account has no transaction): the paging cursor."""

    def value(self, offset: int, limit: int) -> TransactionPage:
        """The page, after checking it is the page asked for: neither more than ``limit`` nor
        fewer than the listing has left after ``offset`` (a truncated answer is an error, not
        a shorter history)."""
        count = len(self.transactions)
        expected = max(0, min(limit, self.total - offset))
        if count != expected:
            raise ValueError(f"partial page: {count} transactions where {expected} are due")
        if self.total and self.snapshot_entry is None:
            raise ValueError("snapshotEntry missing from a non-empty listing")
        return TransactionPage(
            tuple(t.value() for t in self.transactions), self.total, self.snapshot_entry
        )

    @classmethod
    def of(cls, page: TransactionPage) -> TransactionPageModel:
        return cls(
            transactions=[TransactionModel.of(t) for t in page.transactions],
            total=page.total,
            snapshot_entry=page.snapshot_entry,
        )


class AddressModel(_Wire):
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    """ISO 3166-1 alpha-2."""
    address_lines: list[str] = Field(default_factory=list)


class BeneficiaryModel(_Wire):
    id: Text
    creditor_name: Text
    creditor_iban: Text
    creditor_bic: str | None = None
    creditor_address: AddressModel | None = None

    def value(self) -> Beneficiary:
        address = self.creditor_address
        return Beneficiary(
            id=self.id,
            creditor_name=self.creditor_name,
            creditor_iban=self.creditor_iban,
            creditor_bic=self.creditor_bic,
            creditor_address=None
            if address is None
            else PostalAddress(address.country, tuple(address.address_lines)),
        )

    @classmethod
    def of(cls, beneficiary: Beneficiary) -> BeneficiaryModel:
        address = beneficiary.creditor_address
        return cls(
            id=beneficiary.id,
            creditor_name=beneficiary.creditor_name,
            creditor_iban=beneficiary.creditor_iban,
            creditor_bic=beneficiary.creditor_bic,
            creditor_address=None
            if address is None
            else AddressModel(country=address.country, address_lines=list(address.address_lines)),
        )


class BeneficiaryList(_Wire):
    beneficiaries: list[BeneficiaryModel]


class IdentityModel(_Wire):
    connected_psu: Text

    def value(self) -> EndUserIdentity:
        return EndUserIdentity(self.connected_psu)


class FundsCheckRequest(_Wire):
    amount: AmountText
    currency: CurrencyCode


class FundsCheckAnswer(_Wire):
    available: bool


ProblemCode = Literal[
    "unknown_psu", "unknown_account", "currency_mismatch", "bad_request", "internal"
]


class ProblemModel(_Wire):
    """The error body: a machine-readable ``error`` code and a human ``message``."""

    error: ProblemCode
    message: str = ""


def dump(model: _Wire) -> bytes:
    """A model as the wire's JSON (aliases, nulls kept: a required-nullable member such as
    ``snapshotEntry`` must be present)."""
    return model.model_dump_json(by_alias=True).encode()


def balances_answer(found: Mapping[str, Sequence[Balance]]) -> BalancesAnswer:
    return BalancesAnswer(
        balances={key: [BalanceModel.of(b) for b in value] for key, value in found.items()}
    )


__all__ = [
    "JSON",
    "VERSION_PREFIX",
    "AccountList",
    "AccountModel",
    "BalancesAnswer",
    "BeneficiaryList",
    "FundsCheckAnswer",
    "FundsCheckRequest",
    "IdentityModel",
    "ProblemCode",
    "ProblemModel",
    "TransactionPageModel",
    "balances_answer",
    "dump",
]
