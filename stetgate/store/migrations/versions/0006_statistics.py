"""statistics_*: per-minute request counts, response-time histograms and availability samples
of the dedicated interface (PSD2 statistics, RTS 2018/389 Art. 32(4))

Revision ID: 0006_statistics
Revises: 0005_sca_service_challenge
Create Date: 2026-11-30 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stetgate.store.schema

revision = "0006_statistics"
down_revision = "0005_sca_service_challenge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    minute = stetgate.store.schema.UtcDateTime(timezone=True)
    op.create_table(
        "statistics_requests",
        sa.Column("minute", minute, nullable=False),
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("status_class", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("latency_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "minute", "family", "status_class", name=op.f("pk_statistics_requests")
        ),
    )
    op.create_table(
        "statistics_latency",
        sa.Column("minute", minute, nullable=False),
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "family", "bucket", name=op.f("pk_statistics_latency")),
    )
    op.create_table(
        "statistics_availability",
        sa.Column("minute", minute, nullable=False),
        sa.Column("probes_up", sa.Integer(), nullable=False),
        sa.Column("probes_down", sa.Integer(), nullable=False),
        sa.Column("failure_runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("minute", name=op.f("pk_statistics_availability")),
    )


def downgrade() -> None:
    op.drop_table("statistics_availability")
    op.drop_table("statistics_latency")
    op.drop_table("statistics_requests")
