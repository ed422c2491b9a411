"""Wider bands for the perceptual search index: three of 22, 21 and 21 bits instead of four of 16.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-02

Issue 16 (scale): multi-index hashing reads about rows / 2^band_bits rows per band value looked
up, so at millions of views 16-bit bands read tens of thousands of rows per query; bands of
about log2(rows) bits read a few thousand. The bands are recomputed from the stored pHash in
SQL (shifts and masks on the signed BIGINT give the same bits as on the unsigned value), so no
image is decoded again. Downgrade recomputes the four 16-bit bands.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD_BITS = (16, 16, 16, 16)
NEW_BITS = (22, 21, 21)  # storage.tables.PHASH_BAND_BITS as of this revision
TABLE = "perceptual_hashes"


def _index(i: int) -> str:
    return f"ix_perceptual_hashes_band{i}"


def _recompute(bits: tuple[int, ...]) -> None:
    sets = ", ".join(
        f"band{i} = (phash >> {sum(bits[i + 1:])}) & {(1 << width) - 1}"
        for i, width in enumerate(bits))
    op.execute(f"UPDATE {TABLE} SET {sets}")  # noqa: S608 - constants only


def upgrade() -> None:
    for i in range(len(OLD_BITS)):
        op.drop_index(_index(i), table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        for i in range(len(NEW_BITS), len(OLD_BITS)):
            batch.drop_column(f"band{i}")
    _recompute(NEW_BITS)
    for i in range(len(NEW_BITS)):
        op.create_index(_index(i), TABLE, [f"band{i}"])


def downgrade() -> None:
    for i in range(len(NEW_BITS)):
        op.drop_index(_index(i), table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        for i in range(len(NEW_BITS), len(OLD_BITS)):
            batch.add_column(sa.Column(f"band{i}", sa.Integer(), nullable=False,
                                       server_default="0"))
    _recompute(OLD_BITS)
    for i in range(len(OLD_BITS)):
        op.create_index(_index(i), TABLE, [f"band{i}"])
