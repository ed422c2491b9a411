"""The enqueue protocol on the real Redis: one job per burst, a new one after the job starts,
and never an exception towards the API when Redis is down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from rq import Queue
from sqlalchemy import create_engine

from service.settings import load_settings
from service.usecases import queueing
from service.wiring import Services

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def services() -> Iterator[Services]:
    settings = load_settings(env={"CHRONOSEAL_QUEUE": f"test-q-{uuid.uuid4().hex[:10]}"})
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    yield Services(settings, create_engine("sqlite://"), client)
    Queue(settings.queue_name, connection=client).delete()
    client.delete(queueing.stamp_flag_key(settings))


def _queued(services: Services) -> list[str]:
    return [job.func_name for job in queueing.queue_for(services).jobs]


def test_a_burst_enqueues_one_job_until_the_job_clears_the_flag(services: Services) -> None:
    for _ in range(50):
        queueing.enqueue_stamping(services)
    assert _queued(services) == [queueing.STAMP_JOB]
    queueing.clear_stamp_flag(services)  # what the job does before claiming
    queueing.enqueue_stamping(services)
    assert _queued(services) == [queueing.STAMP_JOB] * 2


def test_flag_expires_so_a_lost_job_is_replaced(services: Services) -> None:
    queueing.enqueue_stamping(services)
    queueing.queue_for(services).empty()  # the job is lost, its flag stays
    ttl_ms = services.redis.pttl(queueing.stamp_flag_key(services.settings))
    assert 0 < ttl_ms <= queueing.STAMP_FLAG_TTL_MS


def test_tsa_retries_are_deduplicated(services: Services) -> None:
    assert queueing.enqueue_tsa_retry(services, "bat_1", "builtin")
    assert not queueing.enqueue_tsa_retry(services, "bat_1", "builtin")
    assert queueing.enqueue_tsa_retry(services, "bat_1", "other")


def test_redis_down_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    down = Services(load_settings(env={}), create_engine("sqlite://"),
                    redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    queueing.enqueue_stamping(down)
    assert not queueing.enqueue_stamp_job(down)
    assert not queueing.enqueue_tsa_retry(down, "bat_1", "builtin")
    assert "sweeper" in caplog.text


def record_order(name: str) -> None:
    """A job that notes when it ran (the order of execution is what is tested)."""
    client = redis.Redis.from_url(REDIS_URL)
    client.rpush(f"test-order:{name.split(':')[0]}", name)


def test_stamping_jobs_run_before_background_hashing_jobs(services: Services) -> None:
    """A burst of uploads queues a hashing job per image; stamping must not wait behind them."""
    from rq import SimpleWorker

    tag = services.settings.queue_name
    background = queueing.background_queue_for(services)
    try:
        for i in range(5):
            background.enqueue(record_order, f"{tag}:hash-{i}")
        queueing.queue_for(services).enqueue(record_order, f"{tag}:stamp")
        queues = queueing.worker_queue_names(services.settings)  # as `chronoseal worker` uses
        SimpleWorker(queues, connection=services.redis).work(burst=True, logging_level="WARNING")
        order = [x.decode() for x in services.redis.lrange(f"test-order:{tag}", 0, -1)]
        assert order[0] == f"{tag}:stamp" and len(order) == 6
    finally:
        background.delete()
        services.redis.delete(f"test-order:{tag}")


def test_workers_can_be_split_into_stamping_and_background(services: Services) -> None:
    """`chronoseal up` runs stamping-only workers and one idle-priority background worker."""
    from service.cli.worker import child_argv

    settings = services.settings
    main, background = settings.queue_name, queueing.background_queue_name(settings)
    assert queueing.worker_queue_names(settings, "stamping") == [main]
    assert queueing.worker_queue_names(settings, "background") == [background]
    assert queueing.worker_queue_names(settings) == [main, background]
    argv = child_argv(queues="background", idle=True, sweeper=False)
    assert argv[-4:] == ["--no-sweeper", "--queues", "background", "--idle"]
    assert child_argv(nice=5)[-2:] == ["--nice", "5"]


def test_an_idle_worker_runs_under_sched_idle() -> None:
    import subprocess
    import sys

    code = ("import os; from service.runtime.priority import run_when_idle, normal_priority\n"
            "run_when_idle(); idle = os.sched_getscheduler(0)\n"
            "with normal_priority(): inside = os.sched_getscheduler(0)\n"
            "print(idle == os.SCHED_IDLE, inside == os.SCHED_OTHER,"
            " os.sched_getscheduler(0) == os.SCHED_IDLE)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    # Idle while computing, normal while holding a database lock, idle again after.
    assert out.stdout.split() == ["True", "True", "True"]
