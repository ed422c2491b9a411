"""The lines about batches, TSA answers and webhook deliveries carry their ids and durations
(structured fields, as service.logs writes them), and never a secret or a receiver's body."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service.runtime.redis_server import free_port
from service.usecases.stamp import build_stamper, stamp_next
from tests.support.stamping_env import StampingEnv, TSAEndpoint, builtin_tsa

BATCH_LOGGER = "service.usecases.stamping.batch"


def _stamp_once(env: StampingEnv) -> str | None:
    stamper = build_stamper(env.services, "log-test")
    try:
        return stamp_next(env.services, stamper)
    finally:
        stamper.close()


def test_a_batch_logs_its_id_size_and_each_tsa_with_its_duration(
        tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=BATCH_LOGGER)
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, db_url, [tsa], CHRONOSEAL_BATCH_MAX_WAIT_MS="0")
        try:
            env.add_receipts(3, enqueue=False)
            batch_id = _stamp_once(env)
        finally:
            env.stop()
    lines = [r for r in caplog.records if r.name == BATCH_LOGGER]
    answered = [r for r in lines if getattr(r, "tsa", None) == tsa.name]
    (batch,) = [r for r in lines if hasattr(r, "size")]
    assert batch_id is not None and batch.batch_id == batch_id
    assert (batch.size, batch.tokens) == (3, 1) and batch.duration_ms > 0
    assert [(r.batch_id, r.outcome) for r in answered] == [(batch_id, "token")]
    assert answered[0].duration_ms > 0


def test_a_failing_tsa_logs_the_outcome_and_how_long_it_took(
        tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=BATCH_LOGGER)
    with builtin_tsa(tmp_path / "tsa") as tsa:  # for its root; its port is not the one asked
        nobody = TSAEndpoint("nobody", f"http://127.0.0.1:{free_port()}/", tsa.roots)
    env = StampingEnv(tmp_path, db_url, [nobody], CHRONOSEAL_BATCH_MAX_WAIT_MS="0")
    try:
        env.add_receipts(1, enqueue=False)
        batch_id = _stamp_once(env)
    finally:
        env.stop()
    (failed,) = [r for r in caplog.records
                 if r.name == BATCH_LOGGER and getattr(r, "outcome", "token") != "token"]
    assert (failed.batch_id, failed.tsa) == (batch_id, "nobody") and failed.duration_ms >= 0
