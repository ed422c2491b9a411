"""Perceptual hashes of registered images and their search index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

perceptual_hashes: one row per stored view (full image, crops) of a registered image: the
64-bit pHash (signed BIGINT), its four 16-bit bands (each indexed, for multi-index hashing) and
the 256-bit DCT hash that decides a match. Hash-only receipts have no rows.
image_uploads: uploaded images (by SHA-256) waiting for a worker to hash them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BANDS = 4


def upgrade() -> None:
    op.create_table(
        "perceptual_hashes",
        sa.Column("receipt_id", sa.String(40), nullable=False),
        sa.Column("view", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("dhash256", sa.LargeBinary(32), nullable=False),
        *(sa.Column(f"band{i}", sa.Integer(), nullable=False) for i in range(BANDS)),
        sa.ForeignKeyConstraint(["receipt_id"], ["receipts.id"],
                                name="fk_perceptual_hashes_receipt_id_receipts"),
        sa.PrimaryKeyConstraint("receipt_id", "view", name="pk_perceptual_hashes"),
    )
    op.create_table(
        "image_uploads",
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("image_sha256", "chunk", name="pk_image_uploads"),
    )
    for i in range(BANDS):
        op.create_index(f"ix_perceptual_hashes_band{i}", "perceptual_hashes", [f"band{i}"])


def downgrade() -> None:
    for i in range(BANDS):
        op.drop_index(f"ix_perceptual_hashes_band{i}", table_name="perceptual_hashes")
    op.drop_table("perceptual_hashes")
    op.drop_table("image_uploads")
