"""Counts for monitoring: receipts by status, the oldest pending one, the hashing backlog.

Read at scrape time (service.usecases.backlog caches the answer for a few seconds); three
aggregate queries in one connection, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, true

from service.storage.tables import RECEIPT_STATUSES, receipts


@dataclass(frozen=True)
class ReceiptCounts:
    """Receipts per status (every status present, 0 when none), and the queues' heads."""

    by_status: dict[str, int]
    oldest_pending_at: datetime | None
    hash_pending: int


def receipt_counts(conn: Connection) -> ReceiptCounts:
    """Count receipts by status, find the oldest pending one and count those awaiting hashing."""
    by_status = dict.fromkeys(RECEIPT_STATUSES, 0)
    rows = conn.execute(select(receipts.c.status, func.count()).group_by(receipts.c.status))
    for status, count in rows:
        by_status[status] = int(count)
    oldest = conn.execute(select(func.min(receipts.c.created_at))
                          .where(receipts.c.status == "pending")).scalar_one()
    # hash_pending is true only on the partial index's rows (ix_receipts_hash_pending).
    hashing = conn.execute(select(func.count()).select_from(receipts)
                           .where(receipts.c.hash_pending == true())).scalar_one()
    return ReceiptCounts(by_status, oldest, int(hashing))
