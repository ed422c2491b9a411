"""The few read queries stamping needs that service.storage does not offer (yet).

Kept here, read-only and small, so the storage package stays the only place that writes; they
are candidates to move into service/storage/ (batches.py, tokens.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select

from service.storage.tables import batch_tsa_attempts, receipts, tokens
from service.storage.tokens import TsaAttempt


@dataclass(frozen=True)
class Backlog:
    """Unbatched pending receipts: how many (counted up to a cap) and when the oldest came."""

    count: int
    oldest_created_at: datetime | None


# Built once: a statement made per call is cache-keyed again on every poll (bench/e2e.py's
# worker profile spent a quarter of its stamping time counting the backlog).
_UNBATCHED = (receipts.c.status == "pending", receipts.c.batch_id.is_(None))
_COUNT = select(func.count()).select_from(
    select(receipts.c.id).where(*_UNBATCHED).limit(bindparam("cap")).subquery())
# Ids sort by creation time (service.storage.ids), so the smallest id is the oldest receipt.
_OLDEST = select(receipts.c.created_at).where(*_UNBATCHED).order_by(receipts.c.id).limit(1)


def unbatched_backlog(conn: Connection, cap: int) -> Backlog:
    """Count unbatched pending receipts up to `cap` (cheap: the partial index, then a limit)."""
    count = conn.execute(_COUNT, {"cap": cap}).scalar_one()
    if not count:
        return Backlog(0, None)
    return Backlog(count, conn.execute(_OLDEST).scalar())


def batch_attempts(conn: Connection, batch_id: str) -> dict[str, TsaAttempt]:
    """The batch's per-TSA attempt rows, by TSA name."""
    rows = conn.execute(
        select(batch_tsa_attempts).where(batch_tsa_attempts.c.batch_id == batch_id)
    ).mappings()
    return {
        r["tsa"]: TsaAttempt(r["batch_id"], r["tsa"], r["state"], r["attempts"],
                             r["next_attempt_at"], r["last_error"])
        for r in rows
    }


def token_tsas(conn: Connection, batch_id: str) -> set[str]:
    """Names of the TSAs whose token for this batch is stored."""
    return set(conn.execute(select(tokens.c.tsa).where(tokens.c.batch_id == batch_id)).scalars())


def batch_receipt_ids(conn: Connection, batch_id: str) -> list[str]:
    """The receipts of a batch still pending (those a hopeless batch must fail)."""
    return list(conn.execute(
        select(receipts.c.id).where(receipts.c.batch_id == batch_id,
                                    receipts.c.status == "pending")
    ).scalars())
