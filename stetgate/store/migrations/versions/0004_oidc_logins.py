"""oidc_logins: delegated PSU login at the bank's OpenID Provider (state, nonce, PKCE)

Revision ID: 0004_oidc_logins
Revises: 0003_bank_and_api
Create Date: 2026-11-30 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stetgate.store.schema

revision = "0004_oidc_logins"
down_revision = "0003_bank_and_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_logins",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("journey_id_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("created_at", stetgate.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", stetgate.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    op.create_index("ix_oidc_logins_journey_id_hash", "oidc_logins", ["journey_id_hash"])


def downgrade() -> None:
    op.drop_index("ix_oidc_logins_journey_id_hash", table_name="oidc_logins")
    op.drop_table("oidc_logins")
