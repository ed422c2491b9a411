"""Storage errors: declared with the rest of the one hierarchy (service.errors), named here too."""

from __future__ import annotations

from service.errors import (
    AmbiguousKeyError,
    BatchStateError,
    DatabaseUnavailableError,
    IdempotencyConflictError,
    StorageError,
)

__all__ = ["AmbiguousKeyError", "BatchStateError", "DatabaseUnavailableError",
           "IdempotencyConflictError", "StorageError"]
