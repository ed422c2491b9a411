"""Initial schema: API keys, receipts, batches, tokens and per-TSA attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written out rather than imported from tables.py so that later changes to the tables never alter
what this revision did; tests check that the migrated schema equals tables.metadata.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_PENDING_UNBATCHED = "status = 'pending' AND batch_id IS NULL"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])

    op.create_table(
        "batches",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("root", sa.String(64), nullable=True),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("completed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.CheckConstraint("status IN ('open', 'complete')", name="ck_batches_status"),
    )
    op.create_index("ix_batches_status_lease_until", "batches", ["status", "lease_until"])

    op.create_table(
        "receipts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("image_size", sa.BigInteger(), nullable=True),
        sa.Column("media_type", sa.String(200), nullable=True),
        sa.Column("manifest_jcs", sa.LargeBinary(), nullable=False),
        sa.Column("manifest_digest", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("warnings", sa.Text(), server_default="[]", nullable=False),
        sa.Column("public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("enqueued_at", _TS, nullable=True),
        sa.Column("stamped_at", _TS, nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(40), nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("proof", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_receipts"),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name="fk_receipts_api_key_id_api_keys"
        ),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_receipts_batch_id_batches"),
        sa.CheckConstraint(
            "status IN ('pending', 'stamped', 'failed')", name="ck_receipts_status"
        ),
        sa.UniqueConstraint(
            "api_key_id", "idempotency_key", name="uq_receipts_api_key_id_idempotency_key"
        ),
        sa.UniqueConstraint("batch_id", "leaf_index", name="uq_receipts_batch_id_leaf_index"),
    )
    op.create_index("ix_receipts_batch_id", "receipts", ["batch_id"])
    op.create_index("ix_receipts_api_key_id_id", "receipts", ["api_key_id", "id"])
    op.create_index("ix_receipts_api_key_id_external_id", "receipts", ["api_key_id", "external_id"])
    op.create_index(
        "ix_receipts_unbatched",
        "receipts",
        ["id"],
        sqlite_where=sa.text(_PENDING_UNBATCHED),
        postgresql_where=sa.text(_PENDING_UNBATCHED),
    )
    op.create_index(
        "ix_receipts_pending_enqueued_at",
        "receipts",
        ["enqueued_at"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("tsa", sa.String(100), nullable=False),
        sa.Column("reply_der", sa.LargeBinary(), nullable=False),
        sa.Column("gen_time", _TS, nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_tokens_batch_id_batches"),
        sa.UniqueConstraint("batch_id", "tsa", name="uq_tokens_batch_id_tsa"),
    )

    op.create_table(
        "batch_tsa_attempts",
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("tsa", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "tsa", name="pk_batch_tsa_attempts"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_batch_tsa_attempts_batch_id_batches"
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'done', 'rejected')", name="ck_batch_tsa_attempts_state"
        ),
    )
    op.create_index(
        "ix_batch_tsa_attempts_state_next_attempt_at",
        "batch_tsa_attempts",
        ["state", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("batch_tsa_attempts")
    op.drop_table("tokens")
    op.drop_table("receipts")
    op.drop_table("batches")
    op.drop_table("api_keys")
