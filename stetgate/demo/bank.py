"""The demo bank: `BankBackend` over the ``bank_*`` tables, filled by `stetgate demo seed`.

It stands where a core-banking adapter would: every read is scoped by the PSU (through
``bank_account_holders``), so an account id the PSU does not hold behaves exactly like an
unknown one. Reads are single statements on indexed keys; listing transactions is a snapshot
query (``entryReference`` ≤ the greatest one when the listing started) so pages stay stable
while new entries arrive.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Engine, RowMapping, and_, bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement

from stetgate.bank.backend import (
    Account,
    Balance,
    BalanceType,
    Beneficiary,
    CashAccountType,
    CreditDebit,
    CurrencyMismatch,
    EndUserIdentity,
    Money,
    OtherAccountId,
    PostalAddress,
    Transaction,
    TransactionPage,
    TransactionQuery,
    TransactionStatus,
    UnknownAccount,
    Usage,
)
from stetgate.store.db import read_connection
from stetgate.store.reading import CompiledRead
from stetgate.store.schema import (
    bank_account_holders,
    bank_accounts,
    bank_balances,
    bank_beneficiaries,
    bank_transactions,
    psus,
)

_holders = bank_account_holders.c
_accounts = bank_accounts.c
_balances = bank_balances.c
_tx = bank_transactions.c

# Statements are built once with bind parameters: SQLAlchemy then reuses the compiled form,
# and a call costs one round trip instead of also rebuilding and re-hashing a statement.
_HELD = bank_account_holders.join(bank_accounts, _accounts.resource_id == _holders.account_id)

_ACCOUNTS_OF = (
    select(
        _accounts.resource_id,
        _accounts.bic,
        _accounts.iban,
        _accounts.other_identification,
        _accounts.other_scheme,
        _accounts.other_issuer,
        _accounts.currency,
        _accounts.name,
        _accounts.details,
        _accounts.linked_account,
        _accounts.usage,
        _accounts.cash_account_type,
        _accounts.product,
        _holders.psu_status,
    )
    .select_from(_HELD)
    .where(_holders.psu_id == bindparam("psu_id"))
    .order_by(_holders.position, _accounts.resource_id)
)

_ACCOUNTS_WITH_BALANCES = (
    select(
        *_ACCOUNTS_OF.selected_columns,
        _balances.balance_type,
        _balances.name.label("label"),
        _balances.amount_minor,
        _balances.reference_date,
        _balances.last_change_at,
        _balances.last_committed_entry,
    )
    .select_from(_HELD.outerjoin(bank_balances, _balances.account_id == _accounts.resource_id))
    .where(_holders.psu_id == bindparam("psu_id"))
    .order_by(_holders.position, _accounts.resource_id, _balances.position)
)

_BALANCES_OF = (
    select(
        _balances.account_id,
        _balances.balance_type,
        _balances.name,
        _balances.amount_minor,
        _balances.reference_date,
        _balances.last_change_at,
        _balances.last_committed_entry,
        _accounts.currency,
    )
    .select_from(_HELD.join(bank_balances, _balances.account_id == _accounts.resource_id))
    .where(
        _holders.psu_id == bindparam("psu_id"),
        _holders.account_id.in_(bindparam("account_ids", expanding=True)),
    )
    .order_by(_balances.account_id, _balances.position)
)

_HELD_ACCOUNT = (
    select(
        _accounts.currency,
        _accounts.cash_account_type,
        _accounts.linked_account,
        select(func.max(_tx.entry_reference))
        .where(_tx.account_id == bindparam("account_id"))
        .scalar_subquery(),
    )
    .select_from(_HELD)
    .where(_holders.psu_id == bindparam("psu_id"), _holders.account_id == bindparam("account_id"))
)

_FUNDS = (
    select(_accounts.overdraft_minor, _balances.balance_type, _balances.amount_minor)
    .select_from(
        bank_accounts.outerjoin(
            bank_balances,
            and_(
                _balances.account_id == _accounts.resource_id,
                _balances.balance_type.in_(("XPCD", "CLBD")),
            ),
        )
    )
    .where(_accounts.resource_id == bindparam("account_id"))
    .order_by(_balances.balance_type.desc())
)

_IDENTITY = select(psus.c.display_name).where(psus.c.psu_id == bindparam("psu_id"))

_BENEFICIARIES = (
    select(bank_beneficiaries)
    .where(bank_beneficiaries.c.psu_id == bindparam("psu_id"))
    .order_by(bank_beneficiaries.c.position, bank_beneficiaries.c.id)
)


class DemoBank:
    """The demo bank's ledger, read-only (seeding is `stetgate.demo.seed`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._accounts_of = CompiledRead(engine, _ACCOUNTS_OF)
        self._accounts_with_balances = CompiledRead(engine, _ACCOUNTS_WITH_BALANCES)

    # --- AccountDirectory ----------------------------------------------------------------
    def accounts_of(self, psu_id: str) -> Sequence[Account]:
        return [_account(row) for row in self._accounts_of.rows({"psu_id": psu_id})]

    def accounts_with_balances(
        self, psu_id: str, balance_accounts: Collection[str]
    ) -> Sequence[tuple[Account, Sequence[Balance] | None]]:
        rows = self._accounts_with_balances.rows({"psu_id": psu_id})
        listing: list[tuple[Account, Sequence[Balance] | None]] = []
        current: list[Balance] | None = None
        for row in rows:
            if not listing or listing[-1][0].resource_id != row.resource_id:
                current = [] if row.resource_id in balance_accounts else None
                listing.append((_account(row), current))
            if current is not None and row.balance_type is not None:
                current.append(_balance(row.label, row.currency, row))
        return listing

    # --- BalanceSource -------------------------------------------------------------------
    def balances_of(
        self, psu_id: str, account_ids: Collection[str]
    ) -> Mapping[str, Sequence[Balance]]:
        if not account_ids:
            return {}
        found: dict[str, list[Balance]] = {}
        with read_connection(self._engine) as conn:
            rows = conn.execute(
                _BALANCES_OF, {"psu_id": psu_id, "account_ids": list(account_ids)}
            ).all()
        for row in rows:
            found.setdefault(row.account_id, []).append(_balance(row.name, row.currency, row))
        return found

    # --- TransactionSource ---------------------------------------------------------------
    def transactions_of(
        self, psu_id: str, account_id: str, query: TransactionQuery
    ) -> TransactionPage:
        with read_connection(self._engine) as conn:
            head = conn.execute(_HELD_ACCOUNT, {"psu_id": psu_id, "account_id": account_id}).first()
            if head is None:
                raise UnknownAccount(account_id)
            currency, newest = head[0], head[3]
            snapshot = (
                newest
                if query.up_to_entry is None
                else min(query.up_to_entry, newest if newest is not None else query.up_to_entry)
            )
            if snapshot is None:
                return TransactionPage((), 0, None)
            conditions = _transaction_filter(account_id, query, snapshot)
            total = conn.execute(
                select(func.count()).select_from(bank_transactions).where(*conditions)
            ).scalar_one()
            rows = (
                conn.execute(
                    select(bank_transactions)
                    .where(*conditions)
                    .order_by(_tx.entry_reference.desc())
                    .offset(query.offset)
                    .limit(query.limit)
                )
                .mappings()
                .all()
            )
        return TransactionPage(
            tuple(_transaction(row, currency) for row in rows), int(total), int(snapshot)
        )

    # --- IdentitySource ------------------------------------------------------------------
    def identity_of(self, psu_id: str) -> EndUserIdentity | None:
        with read_connection(self._engine) as conn:
            name = conn.execute(_IDENTITY, {"psu_id": psu_id}).scalar_one_or_none()
        return None if name is None else EndUserIdentity(connected_psu=name)

    # --- BeneficiarySource ---------------------------------------------------------------
    def trusted_beneficiaries_of(self, psu_id: str) -> Sequence[Beneficiary]:
        with read_connection(self._engine) as conn:
            rows = conn.execute(_BENEFICIARIES, {"psu_id": psu_id}).mappings().all()
        return [
            Beneficiary(
                id=row["id"],
                creditor_name=row["creditor_name"],
                creditor_iban=row["creditor_iban"],
                creditor_bic=row["creditor_bic"],
                creditor_address=None
                if row["country"] is None
                else PostalAddress(row["country"], tuple(row["address_lines"] or ())),
            )
            for row in rows
        ]

    # --- FundsChecker --------------------------------------------------------------------
    def funds_available(self, psu_id: str, account_id: str, amount: Decimal, currency: str) -> bool:
        """Covered when ``amount`` ≤ the expected (instant) balance + the authorised overdraft
        of the cash account; a card's deferred debits hit its linked cash account."""
        with read_connection(self._engine) as conn:
            account = conn.execute(
                _HELD_ACCOUNT, {"psu_id": psu_id, "account_id": account_id}
            ).first()
            if account is None:
                raise UnknownAccount(account_id)
            if account.currency != currency:
                raise CurrencyMismatch(
                    f"the amount must be in the account currency ({account.currency})"
                )
            cash_id = account_id
            if account.cash_account_type == "CARD" and account.linked_account:
                cash_id = account.linked_account
            row = conn.execute(_FUNDS, {"account_id": cash_id}).first()
        if row is None or row.amount_minor is None:
            return False
        available = Money(int(row.amount_minor) + int(row.overdraft_minor), currency)
        return amount <= available.decimal


def _transaction_filter(
    account_id: str, query: TransactionQuery, snapshot: int
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        _tx.account_id == account_id,
        _tx.entry_reference <= snapshot,
    ]
    if query.booked_from is not None:
        conditions.append(_tx.imputation_date >= query.booked_from)
    if query.booked_before is not None:
        conditions.append(_tx.imputation_date < query.booked_before)
    if query.after_entry is not None:
        conditions.append(_tx.entry_reference > query.after_entry)
    return conditions


def _account(row: Any) -> Account:
    other = None
    if row.other_identification is not None:
        other = OtherAccountId(row.other_identification, row.other_scheme or "", row.other_issuer)
    return Account(
        resource_id=row.resource_id,
        bic=row.bic,
        iban=row.iban,
        other=other,
        currency=row.currency,
        name=row.name,
        cash_account_type=cast(CashAccountType, row.cash_account_type),
        usage=cast(Usage, row.usage),
        product=row.product,
        psu_status=row.psu_status,
        details=row.details,
        linked_account=row.linked_account,
    )


def _balance(name: str, currency: str, row: Any) -> Balance:
    return Balance(
        name=name,
        amount=Money(row.amount_minor, currency),
        balance_type=cast(BalanceType, row.balance_type),
        last_change_at=row.last_change_at,
        reference_date=row.reference_date,
        last_committed_transaction=(
            None if row.last_committed_entry is None else str(row.last_committed_entry)
        ),
    )


def _transaction(row: RowMapping, currency: str) -> Transaction:
    return Transaction(
        resource_id=row["resource_id"],
        entry_reference=int(row["entry_reference"]),
        amount=Money(int(row["amount_minor"]), currency),
        credit_debit=cast(CreditDebit, row["credit_debit"]),
        status=cast(TransactionStatus, row["status"]),
        booking_date=row["booking_date"],
        value_date=row["value_date"],
        transaction_date=row["transaction_date"],
        remittance_information=tuple(row["remittance"] or ()),
    )
