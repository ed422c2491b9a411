"""Seal the webhook endpoint, integration and callback secrets stored in plain text.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Issue 11 (secrets at rest): each secret becomes `sealed:v1:<key id>:<Fernet token>` under the
secrets key (service/webhooks/secretbox.py), which the caller hands over as the `secrets`
attribute of the Alembic config (service/storage/migrate.py `upgrade(..., secrets=box)`).
Downgrade opens them again. Without a key, a database holding secrets is refused, not half done.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SEALED_PREFIX = "sealed:v1:"  # secretbox.SEALED_PREFIX, as of this revision
TABLES = (("callback_secrets", "api_key_id"), ("webhook_endpoints", "id"), ("integrations", "id"))


def _box() -> Any:
    return op.get_context().config.attributes.get("secrets")  # type: ignore[union-attr]


def _rewrite(sealed: bool) -> None:
    """Seal every plain secret (sealed=True), or open every sealed one (sealed=False)."""
    conn, box = op.get_bind(), _box()
    for name, key in TABLES:
        table = sa.table(name, sa.column(key), sa.column("secret"))
        rows = conn.execute(sa.select(table.c[key], table.c.secret)).all()
        todo = [r for r in rows if r.secret.startswith(SEALED_PREFIX) != sealed]
        if todo and box is None:
            raise RuntimeError("sealing secrets needs the secrets key: migrate with "
                               "`chronoseal db upgrade` (or any chronoseal command)")
        for row_id, secret in todo:
            value = box.seal(secret) if sealed else box.open(secret)
            conn.execute(sa.update(table).where(table.c[key] == row_id).values(secret=value))


def upgrade() -> None:
    _rewrite(sealed=True)


def downgrade() -> None:
    _rewrite(sealed=False)
