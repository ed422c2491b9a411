"""Index receipts by (image_sha256, api_key_id, id), replacing the index on image_sha256 alone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

A registration's answer names the key's earlier receipts of the same bytes. With only
image_sha256 indexed, SQLite's planner preferred (api_key_id, id) for "this key's, oldest
first" and read every receipt of the key (7 ms per upload at 20,000 receipts); the composite
index answers it with one range, and still serves the hashing job's lookup by image_sha256.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD = "ix_receipts_image_sha256"
NEW = "ix_receipts_image_sha256_api_key_id_id"


def upgrade() -> None:
    op.create_index(NEW, "receipts", ["image_sha256", "api_key_id", "id"])
    op.drop_index(OLD, table_name="receipts")


def downgrade() -> None:
    op.create_index(OLD, "receipts", ["image_sha256"])
    op.drop_index(NEW, table_name="receipts")
