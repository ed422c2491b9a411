"""Reliability: Redis loses the queued work (FLUSHALL, or down while receipts are committed).

A private redis-server per test (service.runtime.redis_server.start_redis), so flushing and
stopping it touches nobody else. The database is the source of truth: the sweeper finds every
pending receipt again and all end stamped. The database engine does not matter here (SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.runtime.redis_server import RedisHandle, free_port, start_redis
from tests.support.stamping_env import StampingEnv, builtin_tsa

RECEIPTS = 40
STAMP_TIMEOUT_S = 40  # stale_after 2 s + sweep interval 1 s + RQ's reconnect backoff (<= 8 s)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisHandle]:
    handle = start_redis(tmp_path / "redis-data", free_port(), install=False)
    yield handle
    handle.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "chronoseal.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


def test_flushall_while_pending_then_sweeper_recovers(
    tmp_path: Path, sqlite_url: str, private_redis: RedisHandle
) -> None:
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, sqlite_url, [tsa], redis_url=private_redis.url)
        try:
            env.add_receipts(RECEIPTS)  # jobs queued, no worker yet
            assert env.redis_queue_length() >= 1
            redis.Redis.from_url(private_redis.url).flushall()
            assert env.redis_queue_length() == 0
            env.start_worker()
            env.wait_all_stamped(RECEIPTS, STAMP_TIMEOUT_S)
            env.check_stamped_once()
        finally:
            env.stop()


def test_redis_down_during_commits_then_restarted(
    tmp_path: Path, sqlite_url: str, private_redis: RedisHandle
) -> None:
    port = int(private_redis.url.rsplit(":", 1)[1].split("/")[0])
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, sqlite_url, [tsa], redis_url=private_redis.url)
        restarted = None
        try:
            env.start_worker()
            env.wait_until(lambda: env.registered_workers() == 1, 30, "a registered worker")
            private_redis.stop()
            env.add_receipts(RECEIPTS)  # enqueue_stamping must not raise with Redis down
            assert env.counts() == {"pending": RECEIPTS}
            restarted = start_redis(tmp_path / "redis-data", port, install=False)
            env.wait_all_stamped(RECEIPTS, STAMP_TIMEOUT_S)
            env.check_stamped_once()
        finally:
            env.stop()
            if restarted is not None:
                restarted.stop()


pytestmark = pytest.mark.slow
