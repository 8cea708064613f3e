"""psu_journeys: the bank's SCA-service challenge id (decoupled SCA over HTTP)

Revision ID: 0005_sca_service_challenge
Revises: 0004_oidc_logins
Create Date: 2026-11-30 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sca_service_challenge"
down_revision = "0004_oidc_logins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("psu_journeys") as batch:
        batch.add_column(
            sa.Column("sca_service_challenge_id", sa.String(length=128), nullable=True)
        )
        batch.create_unique_constraint(
            "uq_psu_journeys_sca_service_challenge_id", ["sca_service_challenge_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("psu_journeys") as batch:
        batch.drop_constraint("uq_psu_journeys_sca_service_challenge_id", type_="unique")
        batch.drop_column("sca_service_challenge_id")
