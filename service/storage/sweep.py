"""Queries for the sweeper, which finds work Redis lost and gives up on hopeless receipts.

A receipt is stale when it is still pending, was last enqueued before a threshold, and no live
worker holds it: it is in no batch, or its batch's lease has expired. Re-enqueueing it is safe
because claiming and storing are idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, case, literal, or_, select, update

from service.storage.tables import batches, receipts, utcnow

DEFAULT_SWEEP_LIMIT = 500  # ids per sweep pass: bounds one query's IN list and one RQ burst
MAX_IDS_PER_STATEMENT = 500  # SQLite allows 32766 bound parameters; stay far below


def find_stale_pending(
    conn: Connection,
    older_than: datetime,
    *,
    now: datetime | None = None,
    limit: int = DEFAULT_SWEEP_LIMIT,
) -> list[str]:
    """Ids of pending receipts enqueued before `older_than` that no live lease covers."""
    now = now or utcnow()
    unowned = or_(
        receipts.c.batch_id.is_(None),
        and_(
            batches.c.status == "open",
            or_(batches.c.lease_until.is_(None), batches.c.lease_until < now),
        ),
    )
    query = (
        select(receipts.c.id)
        .select_from(receipts.outerjoin(batches, receipts.c.batch_id == batches.c.id))
        .where(receipts.c.status == "pending", receipts.c.enqueued_at < older_than, unowned)
        .order_by(receipts.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def find_overdue_pending(
    conn: Connection, created_before: datetime, limit: int = DEFAULT_SWEEP_LIMIT
) -> list[str]:
    """Ids of receipts still pending although created before `created_before` (give-up age)."""
    query = (
        select(receipts.c.id)
        .where(receipts.c.status == "pending", receipts.c.created_at < created_before)
        .order_by(receipts.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    step = MAX_IDS_PER_STATEMENT
    return [list(ids[i : i + step]) for i in range(0, len(ids), step)]


def mark_failed(conn: Connection, ids: Sequence[str], reason: str) -> list[str]:
    """Fail the still-pending receipts among `ids`; returns those changed, sorted (the caller
    writes their receipt.failed events in this same transaction).

    The failure text keeps the last transient error, so the client learns why, not only that.
    """
    failure = case(
        (receipts.c.last_error.is_(None), literal(reason)),
        else_=literal(reason + ": ") + receipts.c.last_error,
    )
    changed: list[str] = []
    for chunk in _chunks(ids):
        changed += conn.execute(
            update(receipts)
            .where(receipts.c.id.in_(chunk), receipts.c.status == "pending")
            .values(status="failed", failure=failure)
            .returning(receipts.c.id)
        ).scalars()
    return sorted(changed)


def touch_enqueued(conn: Connection, ids: Sequence[str], now: datetime | None = None) -> int:
    """Record that these pending receipts were enqueued again; returns how many were updated."""
    now = now or utcnow()
    count = 0
    for chunk in _chunks(ids):
        result = conn.execute(
            update(receipts)
            .where(receipts.c.id.in_(chunk), receipts.c.status == "pending")
            .values(enqueued_at=now)
        )
        count += result.rowcount
    return count
