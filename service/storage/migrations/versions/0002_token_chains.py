"""Keep each token's certificate chain (TSA certificate to root) beside the token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

The chain is the one the verifier validated when the token was stored: evidence bundles ship
it, so a bundle stays complete when a TSA is later removed from the configuration or renews its
certificate. Rows from before this revision have NULL and fall back to the configured chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("chain_pem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("chain_pem")
