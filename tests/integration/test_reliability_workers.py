"""Reliability: several worker processes share one queue and one database; a worker is killed.

Real Redis (127.0.0.1:6379, a queue and key prefix per test), real database (SQLite and
PostgreSQL), the built-in TSA over HTTP, `chronoseal worker` subprocesses.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.openssl_tsa_server import serve_openssl_tsa
from tests.support.stamping_env import StampingEnv, TSAEndpoint

RECEIPTS = 200
STAMP_TIMEOUT_S = 60  # 200 receipts take a few seconds; generous for a loaded 2-core machine


def test_two_workers_stamp_every_receipt_exactly_once(tmp_path: Path, db_url: str,
                                                     openssl_pki) -> None:
    # Batches of 20 and a TSA that takes 0.5 s per token: while one worker waits on the TSA the
    # other must take the next batch, so the test always exercises two concurrent claimers.
    pki = openssl_pki()
    with serve_openssl_tsa(pki, mode="slow", delay=0.5) as url:
        tsa = TSAEndpoint("slow", url, pki.root_pem, read_timeout_s=5.0)
        env = StampingEnv(tmp_path, db_url, [tsa], CHRONOSEAL_BATCH_MAX_SIZE="20")
        try:
            env.start_worker()
            env.start_worker()
            env.wait_until(lambda: env.registered_workers() == 2, 30, "two registered workers")
            env.add_receipts(RECEIPTS)
            env.wait_all_stamped(RECEIPTS, STAMP_TIMEOUT_S)
            sizes = env.check_stamped_once()
            assert sum(sizes.values()) == RECEIPTS
            assert len(env.lease_owners()) == 2, "both workers should have stamped batches"
        finally:
            env.stop()


def test_worker_killed_mid_batch_is_taken_over(tmp_path: Path, db_url: str, openssl_pki) -> None:
    pki = openssl_pki()
    # The slow TSA holds the first worker inside its TSA request when it is killed.
    with serve_openssl_tsa(pki, mode="slow", delay=2.0) as url:
        slow = TSAEndpoint("slow", url, pki.root_pem, read_timeout_s=5.0)
        env = StampingEnv(tmp_path, db_url, [slow])
        try:
            victim = env.start_worker("victim")
            env.add_receipts(20)
            env.wait_until(lambda: _claimed(env) > 0, 20, "a claimed batch")
            time.sleep(0.5)  # inside the 2 s TSA request
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            assert env.counts().get("stamped", 0) == 0
            env.start_worker("rescuer")
            env.wait_all_stamped(20, STAMP_TIMEOUT_S)
            env.check_stamped_once()
        finally:
            env.stop()


def _claimed(env: StampingEnv) -> int:
    return sum(1 for r in env.receipt_rows() if r["batch_id"] is not None)


pytestmark = pytest.mark.slow
