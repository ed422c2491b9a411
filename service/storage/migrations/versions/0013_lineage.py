"""Receipts name their working session and may keep a private record's disclosure.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Issue 14 (the iteration history): `session` groups a creator's registrations, listed in order
by GET /v1/sessions/{id} through the (api_key_id, session, id) index; `disclosure_json` holds
the salts and values of a private record only when its creator asked the server to keep them.
Both are nullable: receipts made before keep reading as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEX = "ix_receipts_api_key_id_session_id"
SESSION_LENGTH = 128  # tables.SESSION_LENGTH, as of this revision


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.add_column(sa.Column("session", sa.String(SESSION_LENGTH), nullable=True))
        batch.add_column(sa.Column("disclosure_json", sa.LargeBinary(), nullable=True))
    op.create_index(INDEX, "receipts", ["api_key_id", "session", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="receipts")
    # Plain DROP COLUMNs (SQLite >= 3.35, PostgreSQL): batch mode would copy and drop the
    # receipts table, which the foreign keys of tokens, proofs and deliveries refuse.
    op.execute("ALTER TABLE receipts DROP COLUMN disclosure_json")
    op.execute("ALTER TABLE receipts DROP COLUMN session")
