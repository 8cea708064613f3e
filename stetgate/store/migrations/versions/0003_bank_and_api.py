"""demo bank ledger, STET consents and unattended-access counters

Revision ID: 0003_bank_and_api
Revises: 0002_psu_journey_kind
Create Date: 2026-11-26 14:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stetgate.store.schema

revision = "0003_bank_and_api"
down_revision = "0002_psu_journey_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_accounts",
        sa.Column("resource_id", sa.String(length=35), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("other_identification", sa.String(length=70), nullable=True),
        sa.Column("other_scheme", sa.String(length=35), nullable=True),
        sa.Column("other_issuer", sa.String(length=35), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=70), nullable=False),
        sa.Column("details", sa.String(length=140), nullable=True),
        sa.Column("linked_account", sa.String(length=35), nullable=True),
        sa.Column("usage", sa.String(length=4), nullable=False),
        sa.Column("cash_account_type", sa.String(length=4), nullable=False),
        sa.Column("product", sa.String(length=70), nullable=False),
        sa.Column("overdraft_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", name=op.f("pk_bank_accounts")),
        sa.UniqueConstraint("iban", name=op.f("uq_bank_accounts_iban")),
    )
    op.create_table(
        "bank_beneficiaries",
        sa.Column("id", sa.String(length=35), nullable=False),
        sa.Column("psu_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("creditor_name", sa.String(length=70), nullable=False),
        sa.Column("creditor_iban", sa.String(length=34), nullable=False),
        sa.Column("creditor_bic", sa.String(length=11), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("address_lines", stetgate.store.schema.JsonText(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_beneficiaries")),
    )
    with op.batch_alter_table("bank_beneficiaries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_beneficiaries_psu_id"), ["psu_id"], unique=False)

    op.create_table(
        "psd2_consents",
        sa.Column("psu_id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("balances", stetgate.store.schema.JsonText(), nullable=False),
        sa.Column("transactions", stetgate.store.schema.JsonText(), nullable=False),
        sa.Column("trusted_beneficiaries", sa.Boolean(), nullable=False),
        sa.Column("psu_identity", sa.Boolean(), nullable=False),
        sa.Column("created_at", stetgate.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stetgate.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("psu_id", "org_id", name=op.f("pk_psd2_consents")),
    )
    op.create_table(
        "psd2_unattended_access",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("psu_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.String(length=35), nullable=False),
        sa.Column("window_key", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Text(), nullable=False),
        sa.Column("expires_at", stetgate.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "psu_id",
            "endpoint",
            "resource",
            "window_key",
            name=op.f("pk_psd2_unattended_access"),
        ),
    )
    with op.batch_alter_table("psd2_unattended_access", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_psd2_unattended_access_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "bank_account_holders",
        sa.Column("psu_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=35), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("psu_status", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bank_accounts.resource_id"],
            name=op.f("fk_bank_account_holders_account_id_bank_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("psu_id", "account_id", name=op.f("pk_bank_account_holders")),
    )
    op.create_table(
        "bank_balances",
        sa.Column("account_id", sa.String(length=35), nullable=False),
        sa.Column("balance_type", sa.String(length=4), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=70), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reference_date", sa.Date(), nullable=True),
        sa.Column(
            "last_change_at", stetgate.store.schema.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_committed_entry", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bank_accounts.resource_id"],
            name=op.f("fk_bank_balances_account_id_bank_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "balance_type", name=op.f("pk_bank_balances")),
    )
    op.create_table(
        "bank_transactions",
        sa.Column("account_id", sa.String(length=35), nullable=False),
        sa.Column("entry_reference", sa.BigInteger(), nullable=False),
        sa.Column("resource_id", sa.String(length=35), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_debit", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=4), nullable=False),
        sa.Column("imputation_date", sa.Date(), nullable=False),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("transaction_date", sa.Date(), nullable=True),
        sa.Column("remittance", stetgate.store.schema.JsonText(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bank_accounts.resource_id"],
            name=op.f("fk_bank_transactions_account_id_bank_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "entry_reference", name=op.f("pk_bank_transactions")),
        sa.UniqueConstraint("resource_id", name=op.f("uq_bank_transactions_resource_id")),
    )
    with op.batch_alter_table("bank_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bank_transactions_account_imputation",
            ["account_id", "imputation_date"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("bank_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_transactions_account_imputation")
    op.drop_table("bank_transactions")
    op.drop_table("bank_balances")
    op.drop_table("bank_account_holders")
    with op.batch_alter_table("psd2_unattended_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_psd2_unattended_access_expires_at"))
    op.drop_table("psd2_unattended_access")
    op.drop_table("psd2_consents")
    with op.batch_alter_table("bank_beneficiaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_beneficiaries_psu_id"))
    op.drop_table("bank_beneficiaries")
    op.drop_table("bank_accounts")
