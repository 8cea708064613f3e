"""The bank backend: what the STET resource API needs from a core-banking system.

stetgate is the bank's PSD2 gateway, not its ledger. Everything the AISP and CBPII endpoints
serve comes through these narrow protocols (one per concern, in the spirit of Fosite's
per-flow storage interfaces), so a real adapter implements them against the bank's systems and
the demo bank (`stetgate.demo.bank`) against the database. PSU identification and SCA hooks
are the other half of the backend: `stetgate.bank.psus.PsuDirectory`.

Values are plain frozen dataclasses in STET vocabulary (STET v1.4.2 Part II §4: AccountResource,
BalanceResource, TransactionResource, Beneficiary); money is held in minor units (integers) so
no binary floating point ever touches an amount.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol

CashAccountType = Literal["CACC", "CARD"]
"""STET v1.4.2: a current (cash) account, or a card account with deferred debit."""
Usage = Literal["PRIV", "ORGA"]
BalanceType = Literal["CLBD", "XPCD", "OTHR"]
"""Closing booked (accounting), expected (instant), other (e.g. card outstanding)."""
CreditDebit = Literal["CRDT", "DBIT"]
TransactionStatus = Literal["BOOK", "PDNG"]

CURRENCY_EXPONENTS: Mapping[str, int] = {"EUR": 2, "CHF": 2, "GBP": 2, "USD": 2, "JPY": 0}
"""ISO 4217 minor-unit exponents of the currencies the demo bank may hold."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of ``currency`` (cents for EUR); may be negative for balances."""

    minor: int
    currency: str

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS.get(self.currency, 2)

    @property
    def decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-self.exponent)

    def stet_amount(self) -> str:
        """STET AmountType ``amount``: a decimal string with the currency's digits, e.g.
        ``"-150.00"`` (STET v1.4.2 examples give amounts as strings, never numbers)."""
        exponent = self.exponent
        units, cents = divmod(abs(self.minor), 10**exponent)
        sign = "-" if self.minor < 0 else ""
        return f"{sign}{units}.{cents:0{exponent}d}" if exponent else f"{sign}{units}"


@dataclass(frozen=True, slots=True)
class OtherAccountId:
    """STET GenericIdentification: a non-IBAN account identifier (e.g. a masked card PAN)."""

    identification: str
    scheme_name: str
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """A payment account of a PSU (STET AccountResource without links or balances)."""

    resource_id: str
    bic: str
    iban: str | None
    other: OtherAccountId | None
    currency: str
    name: str
    cash_account_type: CashAccountType
    usage: Usage
    product: str
    psu_status: str
    details: str | None = None
    linked_account: str | None = None
    """For a card account: resource id of the cash account its deferred debits hit."""


@dataclass(frozen=True, slots=True)
class Balance:
    """STET BalanceResource."""

    name: str
    amount: Money
    balance_type: BalanceType
    last_change_at: datetime | None = None
    reference_date: date | None = None
    last_committed_transaction: str | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """STET TransactionResource. ``amount`` is positive; the sign is ``credit_debit``."""

    resource_id: str
    entry_reference: int
    """Technical incremental id of the bank (STET ``entryReference``): greater is newer."""
    amount: Money
    credit_debit: CreditDebit
    status: TransactionStatus
    booking_date: date | None
    value_date: date | None
    transaction_date: date | None
    remittance_information: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TransactionQuery:
    """Which transactions of one account to return, newest first.

    ``booked_from`` is inclusive and ``booked_before`` exclusive (STET ``dateFrom``/``dateTo``),
    on the imputation date (booking date; the transaction date for a pending one);
    ``after_entry`` keeps entries whose ``entryReference`` is greater (STET
    ``entryReferenceFrom``); ``up_to_entry`` freezes the listing at a snapshot so paging through
    it stays stable while new entries arrive.
    """

    booked_from: date | None = None
    booked_before: date | None = None
    after_entry: int | None = None
    up_to_entry: int | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TransactionPage:
    """One page of a transaction listing, the size of the whole listing, and its snapshot."""

    transactions: tuple[Transaction, ...]
    total: int
    snapshot_entry: int | None
    """Greatest ``entryReference`` the listing covers (pass it as ``up_to_entry`` for the next
    pages); None when the account has no transaction at all."""


@dataclass(frozen=True, slots=True)
class PostalAddress:
    country: str
    address_lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """A trusted beneficiary the PSU registered (STET Beneficiary, v1.4.2 BPCE example)."""

    id: str
    creditor_name: str
    creditor_iban: str
    creditor_bic: str | None = None
    creditor_address: PostalAddress | None = None


@dataclass(frozen=True, slots=True)
class EndUserIdentity:
    """The connected PSU's name (STET v1.4.2 Part II §4.6.4 ``connectedPsu``)."""

    connected_psu: str


class UnknownAccount(LookupError):
    """The account does not exist, or is not one the PSU holds."""


class CurrencyMismatch(ValueError):
    """A funds check in another currency than the account's (STET: no FX)."""


class AccountDirectory(Protocol):
    def accounts_of(self, psu_id: str) -> Sequence[Account]:
        """The PSU's payment accounts, in the order the bank shows them (empty if unknown)."""
        ...

    def accounts_with_balances(
        self, psu_id: str, balance_accounts: Collection[str]
    ) -> Sequence[tuple[Account, Sequence[Balance] | None]]:
        """`accounts_of`, each with its balances when its id is in ``balance_accounts`` (else
        None): what ``GET /accounts`` shows after a consent, in one call — the "positions"
        query of a core-banking system, and the resource API's hottest read."""
        ...


class BalanceSource(Protocol):
    def balances_of(
        self, psu_id: str, account_ids: Collection[str]
    ) -> Mapping[str, Sequence[Balance]]:
        """Balances per account id, for those of ``account_ids`` the PSU holds (at least the
        accounting balance CLBD for a cash account, STET v1.4.2 §4.3)."""
        ...


class TransactionSource(Protocol):
    def transactions_of(
        self, psu_id: str, account_id: str, query: TransactionQuery
    ) -> TransactionPage:
        """A page of the account's transactions, newest first; raises UnknownAccount when the
        PSU does not hold the account."""
        ...


class IdentitySource(Protocol):
    def identity_of(self, psu_id: str) -> EndUserIdentity | None: ...


class BeneficiarySource(Protocol):
    def trusted_beneficiaries_of(self, psu_id: str) -> Sequence[Beneficiary]: ...


class FundsChecker(Protocol):
    def funds_available(self, psu_id: str, account_id: str, amount: Decimal, currency: str) -> bool:
        """Would ``amount`` be covered now (yes/no only: nothing is blocked)? Raises
        UnknownAccount, or CurrencyMismatch when ``currency`` is not the account's."""
        ...


class BankBackend(
    AccountDirectory,
    BalanceSource,
    TransactionSource,
    IdentitySource,
    BeneficiarySource,
    FundsChecker,
    Protocol,
):
    """Everything the resource API reads from the bank."""
