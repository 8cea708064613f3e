"""psu_journeys: journey kind, per-journey failed attempts, index on psu_id

Revision ID: 0002_psu_journey_kind
Revises: 0001_core
Create Date: 2026-11-26 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_psu_journey_kind"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("psu_journeys") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="authorize")
        )
        batch.add_column(
            sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_index("ix_psu_journeys_psu_id", ["psu_id"])


def downgrade() -> None:
    with op.batch_alter_table("psu_journeys") as batch:
        batch.drop_index("ix_psu_journeys_psu_id")
        batch.drop_column("failed_attempts")
        batch.drop_column("kind")
