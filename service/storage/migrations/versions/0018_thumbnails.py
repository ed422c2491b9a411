"""Thumbnails of uploaded images, kept after the uploads are dropped.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

thumbnails: one bounded JPEG per image digest, written by the hashing worker with the hashes
(issue 15: with keep_images off the pages and the exhibit had no picture at all).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

HEX_SHA256_LENGTH = 64


def upgrade() -> None:
    op.create_table(
        "thumbnails",
        sa.Column("image_sha256", sa.String(HEX_SHA256_LENGTH), primary_key=True),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("thumbnails")
