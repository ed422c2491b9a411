"""`chronoseal stamp`: placeholder while the client is written."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add nothing yet."""
