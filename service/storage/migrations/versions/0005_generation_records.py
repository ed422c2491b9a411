"""Generation records read from image files.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: the tables arrive with the issue's work."""


def downgrade() -> None:
    """Nothing to undo yet."""
