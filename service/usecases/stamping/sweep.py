"""The sweep: find the work Redis lost or a dead worker left behind, and give up in the end.

Redis only carries work; the database knows what is left. One sweep:
1. fails receipts pending longer than give_up_after_s, with the last TSA error as the reason;
2. re-enqueues stamping when receipts are pending longer than stale_after_s with no live lease
   (their job vanished with a Redis restart or flush, or their worker was killed mid-batch:
   a stamp job takes expired batches over and asks the TSAs again for the same root);
3. enqueues the TSA retries whose backoff has passed.
Enqueueing goes through callables, so this module knows nothing of RQ or Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from service.storage import (
    find_overdue_pending,
    find_stale_pending,
    list_due_attempts,
    touch_enqueued,
    write_transaction,
)
from service.storage.tables import utcnow
from service.usecases.stamping.failures import fail_receipts

log = logging.getLogger(__name__)

GIVE_UP_REASON = "no verified token before the give-up deadline"


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did (logged; returned by `chronoseal sweep`)."""

    failed: int = 0
    stale: int = 0
    requeued: bool = False
    retries: int = 0


def sweep(
    engine: Engine,
    *,
    stale_after_s: float,
    give_up_after_s: float,
    enqueue_stamp: Callable[[], bool],
    enqueue_retry: Callable[[str, str], bool],
    now: datetime | None = None,
) -> SweepReport:
    """Run the three steps above once; safe to run concurrently and repeatedly."""
    now = now or utcnow()
    with write_transaction(engine) as conn:
        overdue = find_overdue_pending(conn, now - timedelta(seconds=give_up_after_s))
        failed = fail_receipts(conn, overdue, GIVE_UP_REASON) if overdue else []
    if failed:
        log.warning("sweep: %d receipt(s) failed after %ss", len(failed), give_up_after_s)

    with engine.connect() as conn:
        stale = find_stale_pending(conn, now - timedelta(seconds=stale_after_s), now=now)
    # One job is enough: a job that finds more than a full batch (or took a batch over)
    # enqueues a follow-up, so the backlog spreads over every worker.
    requeued = bool(stale) and enqueue_stamp()
    if requeued:
        with write_transaction(engine) as conn:
            touch_enqueued(conn, stale, now)
        log.info("sweep: %d stale receipt(s), stamping re-enqueued", len(stale))

    with engine.connect() as conn:
        due = list_due_attempts(conn, now)
    retries = sum(1 for attempt in due if enqueue_retry(attempt.batch_id, attempt.tsa))
    return SweepReport(failed=len(failed), stale=len(stale), requeued=requeued, retries=retries)
