"""Webhook endpoints, deliveries and inbound integrations (issue 5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: the tables arrive with the issue's work."""


def downgrade() -> None:
    """Nothing to undo yet."""
