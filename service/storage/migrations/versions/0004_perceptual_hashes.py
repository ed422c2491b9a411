"""Perceptual hashes of registered images and their search index (issue 6).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: the tables arrive with the issue's work."""


def downgrade() -> None:
    """Nothing to undo yet."""
