"""Storage: SQLAlchemy Core tables, repository functions and Alembic migrations.

The database is the source of truth (Redis only carries work). Everything the other layers
need is importable from here; modules are split by resource (keys, receipts, batches, tokens,
sweep). Datetimes in and out are timezone-aware UTC on every engine.
"""

from service.storage.batches import (
    Batch,
    Leaf,
    claim_batch,
    claim_expired_batch,
    get_batch,
    renew_lease,
)
from service.storage.engine import make_engine, normalize_url, ping, write_transaction
from service.storage.errors import (
    AmbiguousKeyError,
    BatchStateError,
    DatabaseUnavailableError,
    IdempotencyConflictError,
    StorageError,
)
from service.storage.ids import new_receipt_id
from service.storage.keys import (
    ApiKey,
    create_api_key,
    find_api_key_by_secret,
    list_api_keys,
    revoke_api_key,
)
from service.storage.migrate import current_revision, head_revision, upgrade
from service.storage.receipts import Receipt, get_receipt, insert_receipt, list_receipts
from service.storage.sweep import (
    find_overdue_pending,
    find_stale_pending,
    mark_failed,
    touch_enqueued,
)
from service.storage.tokens import (
    NewToken,
    StoreResult,
    Token,
    TsaAttempt,
    add_token,
    list_due_attempts,
    list_tokens,
    record_batch_error,
    store_batch_result,
)

__all__ = [
    "AmbiguousKeyError", "ApiKey", "Batch", "BatchStateError", "DatabaseUnavailableError",
    "IdempotencyConflictError", "Leaf", "NewToken", "Receipt", "StorageError", "StoreResult",
    "Token", "TsaAttempt", "add_token", "claim_batch", "claim_expired_batch", "create_api_key",
    "current_revision", "find_api_key_by_secret", "find_overdue_pending", "find_stale_pending",
    "get_batch", "get_receipt", "head_revision", "insert_receipt", "list_api_keys",
    "list_due_attempts", "list_receipts", "list_tokens", "make_engine", "mark_failed",
    "new_receipt_id", "normalize_url", "ping", "record_batch_error", "renew_lease",
    "revoke_api_key", "store_batch_result", "touch_enqueued", "upgrade", "write_transaction",
]
