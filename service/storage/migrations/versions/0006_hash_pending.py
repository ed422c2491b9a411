"""Receipts whose image waits for perceptual hashing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

receipts.hash_pending: set in the same INSERT that registers an image whose upload is kept,
cleared when its hashes are stored. The hashing job's work list is the partial index on it, so
the API enqueues nothing per upload and the work list stays as small as the backlog (it was
"kept uploads without hashes", which grows with every upload when CHRONOSEAL_KEEP_IMAGES).

ix_receipts_image_sha256: the hashing job copies the hashes of an earlier receipt of the same
bytes; without this index that lookup read the whole receipts table once per image.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("receipts", sa.Column("hash_pending", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    op.create_index("ix_receipts_image_sha256", "receipts", ["image_sha256"])
    op.create_index("ix_receipts_hash_pending", "receipts", ["id"],
                    sqlite_where=sa.text("hash_pending = 1"),
                    postgresql_where=sa.text("hash_pending"))
    # Uploads kept before this revision and not hashed yet are the work list's first entries.
    receipts = sa.table("receipts", sa.column("id"), sa.column("image_sha256"),
                        sa.column("image_size"), sa.column("hash_pending", sa.Boolean()))
    uploads = sa.table("image_uploads", sa.column("image_sha256"), sa.column("chunk"))
    hashes = sa.table("perceptual_hashes", sa.column("receipt_id"))
    op.execute(receipts.update().where(
        receipts.c.image_size.is_not(None),
        sa.exists().where(uploads.c.image_sha256 == receipts.c.image_sha256,
                          uploads.c.chunk == 0),
        ~sa.exists().where(hashes.c.receipt_id == receipts.c.id),
    ).values(hash_pending=True))


def downgrade() -> None:
    op.drop_index("ix_receipts_hash_pending", table_name="receipts")
    op.drop_index("ix_receipts_image_sha256", table_name="receipts")
    with op.batch_alter_table("receipts") as batch:
        batch.drop_column("hash_pending")
