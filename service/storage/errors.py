"""Storage errors: part of the one Chronoseal hierarchy, so callers catch `ChronosealError`."""

from __future__ import annotations

from service.errors import ChronosealError


class StorageError(ChronosealError):
    """The database refused or could not serve a request (wraps SQLAlchemy errors)."""


class DatabaseUnavailableError(StorageError):
    """The database did not answer a health check."""


class IdempotencyConflictError(StorageError):
    """An Idempotency-Key was reused with a different request; the first receipt stands."""

    def __init__(self, api_key_id: str, idempotency_key: str, receipt_id: str) -> None:
        super().__init__(f"idempotency key {idempotency_key!r} already used for another request")
        self.api_key_id = api_key_id
        self.idempotency_key = idempotency_key
        self.receipt_id = receipt_id


class AmbiguousKeyError(StorageError):
    """A key prefix matched more than one API key; give the key id instead."""


class BatchStateError(StorageError):
    """A batch operation does not fit the batch's state (unknown batch, different root...)."""
