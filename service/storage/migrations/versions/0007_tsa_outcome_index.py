"""Index each TSA's attempts by state and time, for the readiness check.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

/readyz reports each enabled TSA's newest token and newest failure; batch_tsa_attempts grows
by one row per batch and TSA, so without (tsa, state, updated_at) each check read it whole.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_batch_tsa_attempts_tsa_state_updated_at"


def upgrade() -> None:
    op.create_index(INDEX, "batch_tsa_attempts", ["tsa", "state", "updated_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="batch_tsa_attempts")
