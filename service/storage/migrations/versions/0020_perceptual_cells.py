"""perceptual_cells: the cells (a 3x3 grid) of registered images, a second stage of search.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04

Issue 16 (overlays): a square logo or badge inside the picture (inset in a corner, or in the
middle), which no edge view cuts away, spoils the whole views of a copy but leaves most cells
of a 3x3 grid intact. The cells get a table of their own, laid out as perceptual_hashes with the
same covering band indexes, so that the first lookup every search makes reads no more rows than
before; the cells are looked up only when it found nothing. Images hashed before have none
(their uploads are gone unless CHRONOSEAL_KEEP_IMAGES): they are found as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BANDS = 3  # storage.tables.PHASH_BANDS as of this revision
TABLE = "perceptual_cells"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("receipt_id", sa.String(40), nullable=False),
        sa.Column("view", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("dhash256", sa.LargeBinary(32), nullable=False),
        *(sa.Column(f"band{i}", sa.Integer(), nullable=False) for i in range(BANDS)),
        sa.ForeignKeyConstraint(["receipt_id"], ["receipts.id"],
                                name=f"fk_{TABLE}_receipt_id_receipts"),
        sa.PrimaryKeyConstraint("receipt_id", "view", name=f"pk_{TABLE}"),
    )
    for i in range(BANDS):
        op.create_index(f"ix_{TABLE}_band{i}_phash", TABLE, [f"band{i}", "phash"])


def downgrade() -> None:
    for i in range(BANDS):
        op.drop_index(f"ix_{TABLE}_band{i}_phash", table_name=TABLE)
    op.drop_table(TABLE)
