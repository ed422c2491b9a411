"""Covering band indexes: each perceptual band index holds the pHash too, (bandN, phash).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03

Issue 16 (scale): a search read every row whose band matched (~3,600 at 19 million rows) from
the table, to test its pHash distance. With the pHash in the band index the test needs the
index alone (an index-only scan on PostgreSQL, a covering index on SQLite), and the table is
read only for the few views close enough. A plain composite index rather than PostgreSQL's
INCLUDE: the same DDL on both dialects, and the same leaf entries.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BANDS = 3  # storage.tables.PHASH_BANDS as of this revision
TABLE = "perceptual_hashes"


def upgrade() -> None:
    for i in range(BANDS):
        op.drop_index(f"ix_{TABLE}_band{i}", table_name=TABLE)
        op.create_index(f"ix_{TABLE}_band{i}_phash", TABLE, [f"band{i}", "phash"])


def downgrade() -> None:
    for i in range(BANDS):
        op.drop_index(f"ix_{TABLE}_band{i}_phash", table_name=TABLE)
        op.create_index(f"ix_{TABLE}_band{i}", TABLE, [f"band{i}"])
