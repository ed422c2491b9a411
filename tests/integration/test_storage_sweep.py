"""Sweeper queries: pending receipts no live worker holds, give-up, re-enqueue bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.storage import (
    NewToken,
    claim_batch,
    find_overdue_pending,
    find_stale_pending,
    get_receipt,
    mark_failed,
    record_batch_error,
    touch_enqueued,
    write_transaction,
)
from service.usecases.stamping.results import store_batch_result

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(seconds=60)
LEASE_S = 30


def test_find_stale_pending(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    now = T0 + timedelta(minutes=5)
    leased = make_receipt(key.id, created_at=T0)
    claim_batch(db_engine, 1, "alive", LEASE_S, now=now)  # the lease runs past `now`
    expired = make_receipt(key.id, created_at=T0)
    claim_batch(db_engine, 1, "dead", LEASE_S, now=T0)  # the lease ended long before `now`
    stamped = make_receipt(key.id, created_at=T0)
    done = claim_batch(db_engine, 1, "w", LEASE_S, now=now)
    store_batch_result(
        db_engine, done.id, "ab" * 32, {stamped.id: []},
        [NewToken("a", b"\x30\x00", now, 1)], 1, now=now,
    )
    unbatched_old = make_receipt(key.id, created_at=T0)
    recent = make_receipt(key.id, created_at=now - timedelta(seconds=10))
    with db_engine.connect() as conn:
        stale = find_stale_pending(conn, now - STALE_AFTER, now=now)
        assert stale == [expired.id, unbatched_old.id]
        assert find_stale_pending(conn, now - STALE_AFTER, now=now, limit=1) == [expired.id]
        later = find_stale_pending(conn, now - STALE_AFTER, now=now + timedelta(hours=1))
        assert leased.id in later and recent.id not in later  # lease expired; recent is recent


def test_touch_enqueued_resets_staleness(db_engine, make_receipt) -> None:
    receipt = make_receipt(created_at=T0)
    now = T0 + timedelta(minutes=5)
    with write_transaction(db_engine) as conn:
        assert find_stale_pending(conn, now - STALE_AFTER, now=now) == [receipt.id]
        assert touch_enqueued(conn, [receipt.id, "rcp_missing"], now=now) == 1
        assert find_stale_pending(conn, now - STALE_AFTER, now=now) == []
        assert get_receipt(conn, receipt.id, None).enqueued_at == now


def test_give_up_marks_failed_with_last_reason(db_engine, make_receipt) -> None:
    old = make_receipt(created_at=T0)
    plain = make_receipt(created_at=T0)
    young = make_receipt(created_at=T0 + timedelta(days=8))
    batch = claim_batch(db_engine, 1, "w", LEASE_S, now=T0)
    record_batch_error(db_engine, batch.id, "tsa1", "HTTP 503", None, rejected=False, now=T0)
    cutoff = T0 + timedelta(days=7)
    with write_transaction(db_engine) as conn:
        overdue = find_overdue_pending(conn, cutoff)
        assert overdue == sorted([old.id, plain.id])
        assert young.id not in overdue
        failed = mark_failed(conn, [*overdue, young.id][:2], "gave up after 7 days")
        assert failed == sorted([old.id, plain.id])
        assert mark_failed(conn, overdue, "again") == []  # only pending receipts change
        first = get_receipt(conn, old.id, None)
        second = get_receipt(conn, plain.id, None)
        assert find_overdue_pending(conn, cutoff) == []
    assert first.status == "failed" and first.failure == "gave up after 7 days: tsa1: HTTP 503"
    assert second.failure == "gave up after 7 days"
