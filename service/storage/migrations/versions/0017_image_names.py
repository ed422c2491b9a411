"""The file name an image was registered under.

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-02

receipts.image_name: the multipart part's `filename` as the client sent it (issue 15: the
certificate said "not stated" for every receipt because the name was read and then dropped).
Not part of the manifest, so adding it changes no digest; earlier receipts stay NULL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

IMAGE_NAME_LENGTH = 255  # tables.IMAGE_NAME_LENGTH as of this revision


def upgrade() -> None:
    op.add_column("receipts", sa.Column("image_name", sa.String(IMAGE_NAME_LENGTH), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite >= 3.35, PostgreSQL): batch mode would copy and drop the
    # receipts table, which the foreign keys of tokens, proofs and deliveries refuse.
    op.execute("ALTER TABLE receipts DROP COLUMN image_name")
