"""How a worker waits for a batch to fill (Stamper.wait_for_batch): a steady trickle is counted
once and claimed at the oldest receipt's deadline; a backlog growing fast enough to fill the
batch first is counted again until it does, and claimed then."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event

from service.usecases.stamp import build_stamper
from service.usecases.stamping.batch import Stamper
from tests.support.stamping_env import StampingEnv, builtin_tsa


def _count_queries(env: StampingEnv) -> list[str]:
    """The SELECTs the engine runs from now on (SQLite's explicit BEGINs left out)."""
    statements: list[str] = []
    event.listen(env.services.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]) if args[2].startswith("SELECT")
                 else None)
    return statements


@contextmanager
def _stamper(tmp_path: Path, db_url: str, max_wait_ms: int, max_size: int
             ) -> Iterator[tuple[StampingEnv, Stamper]]:
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, db_url, [tsa], CHRONOSEAL_BATCH_MAX_WAIT_MS=str(max_wait_ms),
                          CHRONOSEAL_BATCH_MAX_SIZE=str(max_size))
        stamper = build_stamper(env.services, "fill-test")
        try:
            yield env, stamper
        finally:
            stamper.close()
            env.stop()


def test_a_trickle_is_counted_once_then_claimed_at_its_deadline(tmp_path: Path,
                                                                db_url: str) -> None:
    with _stamper(tmp_path, db_url, max_wait_ms=400, max_size=256) as (env, stamper):
        env.add_receipts(1, enqueue=False)
        statements = _count_queries(env)
        started = time.monotonic()
        assert stamper.wait_for_batch() == 1
        waited = time.monotonic() - started
    # One receipt cannot grow to 256 before its deadline: one count (two queries), one sleep.
    # Polling every quarter of the wait counted it four times.
    assert len(statements) == 2, statements
    assert waited >= 0.3  # slept until the oldest receipt's batch_max_wait_ms (less its age)


def test_a_backlog_that_fills_the_batch_is_claimed_before_the_deadline(tmp_path: Path,
                                                                       db_url: str) -> None:
    with _stamper(tmp_path, db_url, max_wait_ms=20000, max_size=6) as (env, stamper):
        env.add_receipts(3, enqueue=False)  # half full at once: it will fill at this rate
        more = threading.Thread(target=env.add_receipts, args=(3,), kwargs={"enqueue": False})
        started = time.monotonic()
        more.start()
        try:
            count = stamper.wait_for_batch()
        finally:
            more.join()
        waited = time.monotonic() - started
    assert count == 6
    assert waited < 10  # far before the 20 s deadline: counted again until full
