"""Keep each batch's head: the exact batch-head.json bytes whose SHA-256 its tokens imprint.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Proof format 2 signs the tree size along with the root (service/timestamping/batch_head.py).
Batches stamped before this revision keep NULL: their tokens imprint the root, format 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("head_jcs", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("head_jcs")
