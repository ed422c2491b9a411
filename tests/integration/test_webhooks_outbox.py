"""The outbox pump: claims what is due and enqueues one job per row; idle polls only read."""

from __future__ import annotations

import os
import secrets
import time

import pytest
import redis
from rq import Queue
from sqlalchemy import text

from service.settings import load_settings
from service.stamping.failures import fail_receipts
from service.storage import write_transaction
from service.wiring import Services
from workers.outbox import pump_once

REDIS_URL = os.environ.get("CHRONOSEAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def services(db_engine, tmp_path):
    queue = f"test-outbox-{secrets.token_hex(4)}"
    settings = load_settings(env={}, config_file=tmp_path / "absent.toml", queue_name=queue,
                             data_dir=str(tmp_path / "data"))
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    yield Services(settings, db_engine, client)
    Queue(queue, connection=client).delete()
    client.close()


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
