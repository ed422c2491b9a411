"""RFC 4998 evidence records: each token's archive timestamps, renewed before certificates expire.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

_TS = sa.DateTime(timezone=True)

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_records",
        sa.Column("batch_id", sa.String(40), sa.ForeignKey("batches.id"), primary_key=True),
        sa.Column("tsa", sa.String(100), primary_key=True),
        sa.Column("record_der", sa.LargeBinary(), nullable=False),
        sa.Column("renewals", sa.Text(), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("renewed_at", _TS, nullable=False),
    )
    op.create_index("ix_evidence_records_expires_at", "evidence_records", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_evidence_records_expires_at", table_name="evidence_records")
    op.drop_table("evidence_records")
