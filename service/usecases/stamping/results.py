"""Storing what the TSAs gave a batch, and the stamping rule that decides what it changes.

The rule from DESIGN.md: receipts become `stamped` only in the transaction that finds at least
`min_tokens` verified tokens stored for their batch (the caller verifies tokens before passing
them in). That transaction also completes the batch and writes the webhook events: the
newly stamped receipts get receipt.stamped; receipts stamped earlier get receipt.token_added
when this call added tokens from TSAs not stored before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from service.storage import (
    BatchStateError,
    NewToken,
    complete_batch,
    count_tokens,
    insert_tokens,
    lock_batch,
    mark_receipts_stamped,
    stamped_receipt_ids,
    store_proofs,
)
from service.storage.engine import connection_for
from service.storage.tables import utcnow
from service.usecases.stamping.notify import record_events
from service.webhooks.events import STAMPED, TOKEN_ADDED


@dataclass(frozen=True)
class StoreResult:
    """What a store did: tokens now held, and the receipts this call marked stamped."""

    batch_id: str
    token_count: int
    complete: bool
    stamped_receipt_ids: list[str]


def _check(min_tokens: int) -> None:
    if min_tokens < 1:
        raise ValueError("min_tokens must be at least 1: a receipt is never stamped tokenless")


def _settle(conn: Connection, batch_id: str, min_tokens: int, new_tsas: Sequence[str],
            now: datetime) -> StoreResult:
    """Apply the rule above once tokens are stored, in the storing transaction."""
    count = count_tokens(conn, batch_id)
    if count < min_tokens:
        return StoreResult(batch_id, count, False, [])
    stamped = mark_receipts_stamped(conn, batch_id, now)
    complete_batch(conn, batch_id, now)
    record_events(conn, STAMPED, stamped, now=now)
    if new_tsas:
        newly = set(stamped)
        earlier = [rid for rid in stamped_receipt_ids(conn, batch_id) if rid not in newly]
        record_events(conn, TOKEN_ADDED, earlier, new_tsas=new_tsas, now=now)
    return StoreResult(batch_id, count, True, stamped)


def store_batch_result(
    bind: Engine | Connection,
    batch_id: str,
    root_hex: str,
    proofs: Mapping[str, Sequence[str]],
    new_tokens: Sequence[NewToken | tuple[str, bytes, datetime, int | str]],
    min_tokens: int,
    now: datetime | None = None,
    head_jcs: bytes | None = None,
) -> StoreResult:
    """In one transaction: store root, head, every leaf's audit path and the tokens; then, if the
    batch holds at least `min_tokens` tokens, mark its pending receipts stamped.

    `proofs` must cover exactly the batch's receipts. `head_jcs` is the batch-head.json the
    tokens imprint (None: they imprint the root, proof format 1). Storing again (after a
    takeover) must give the same root and head; duplicate tokens for a TSA are ignored.
    """
    _check(min_tokens)
    now = now or utcnow()
    with connection_for(bind) as conn:
        store_proofs(conn, batch_id, root_hex, proofs, head_jcs)
        added = insert_tokens(conn, batch_id, (NewToken(*token) for token in new_tokens), now)
        return _settle(conn, batch_id, min_tokens, added, now)


def add_token(
    bind: Engine | Connection,
    batch_id: str,
    token: NewToken,
    min_tokens: int,
    now: datetime | None = None,
) -> StoreResult:
    """Add a later TSA's token to a batch whose root is stored; may complete the batch."""
    _check(min_tokens)
    now = now or utcnow()
    with connection_for(bind) as conn:
        if lock_batch(conn, batch_id) is None:
            raise BatchStateError(f"batch {batch_id} has no stored root yet")
        added = insert_tokens(conn, batch_id, [NewToken(*token)], now)
        return _settle(conn, batch_id, min_tokens, added, now)
