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
    RevocationRow,
    Token,
    TsaAttempt,
    TsaOutcome,
    complete_batch,
    count_tokens,
    insert_tokens,
    list_due_attempts,
    list_revocations,
    list_tokens,
    lock_batch,
    mark_receipts_stamped,
    record_batch_error,
    stamped_receipt_ids,
    store_proofs,
    store_revocation,
    tokens_missing_revocation,
    tsa_outcomes,
)

__all__ = [
    "AmbiguousKeyError", "ApiKey", "Batch", "BatchStateError", "DatabaseUnavailableError",
    "IdempotencyConflictError", "Leaf", "NewToken", "Receipt", "RevocationRow", "StorageError",
    "Token", "TsaAttempt", "TsaOutcome", "claim_batch", "claim_expired_batch", "complete_batch",
    "count_tokens", "create_api_key", "current_revision", "find_api_key_by_secret",
    "find_overdue_pending", "find_stale_pending", "get_batch", "get_receipt", "head_revision",
    "insert_receipt", "insert_tokens", "list_api_keys", "list_due_attempts", "list_receipts",
    "list_revocations", "list_tokens", "lock_batch", "make_engine", "mark_failed",
    "mark_receipts_stamped", "new_receipt_id", "normalize_url", "ping", "record_batch_error",
    "renew_lease", "revoke_api_key", "stamped_receipt_ids", "store_proofs", "store_revocation",
    "tokens_missing_revocation", "touch_enqueued", "tsa_outcomes", "upgrade", "write_transaction",
]
