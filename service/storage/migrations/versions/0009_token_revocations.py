"""Revocation data per token: the CRL of each certificate of its chain, fetched at stamping.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

token_revocations: one row per (token, certificate below the root), kind 'crl' (DER CRL) or
'ocsp' (DER OCSPResponse) as fetched, or 'none' with the reason none could be stored. Tokens
stored before this revision have no rows: their bundles say "no revocation data available".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("cert_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("fetched_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_token_revocations"),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"],
                                name="fk_token_revocations_token_id_tokens"),
        sa.UniqueConstraint("token_id", "cert_sha256",
                            name="uq_token_revocations_token_id_cert_sha256"),
        sa.CheckConstraint("kind IN ('crl', 'ocsp', 'none')", name="ck_token_revocations_kind"),
    )


def downgrade() -> None:
    op.drop_table("token_revocations")
