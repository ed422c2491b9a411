"""The outbox pump: claims what is due and enqueues one job per row; idle polls only read."""

from __future__ import annotations

import time

import pytest
from rq import Queue
from sqlalchemy import text

from service.storage import write_transaction
from service.usecases.outbox import pump_once
from service.usecases.stamping.failures import fail_receipts


def test_due_deliveries_are_enqueued_once(services, make_receipt) -> None:
    ids = [make_receipt(callback_url="https://example.com/h").id for _ in range(3)]
    with write_transaction(services.engine) as conn:
        fail_receipts(conn, ids, "gave up")
    assert pump_once(services) == 3
    assert pump_once(services) == 0  # claimed: not due again until the lease passes
    jobs = Queue(services.settings.queue_name, connection=services.redis).jobs
    assert sorted(j.func_name for j in jobs) == ["workers.jobs.deliver_webhook"] * 3


@pytest.mark.parametrize("db_backend", ["sqlite"])  # the lock in question is SQLite's
def test_an_idle_poll_takes_no_write_lock(services, db_backend, db_engine) -> None:
    with db_engine.connect() as holder:
        holder.execute(text("DELETE FROM callback_secrets"))  # holds the write lock (BEGIN)
        started = time.monotonic()
        assert pump_once(services) == 0
        assert time.monotonic() - started < 1.0  # not the 5 s busy timeout
        holder.rollback()
