"""/readyz: 200 only when an upload made now will be stamped; else a 503 naming what is not.

Each test runs on a queue of its own, so no worker of another test counts as ours; workers are
real RQ registrations (birth and heartbeat in Redis), TSA failures are recorded by the real
stamping code asking a TSA port nothing listens on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Queue, Worker
from rq.utils import utcformat
from sqlalchemy import create_engine

from service.runtime.redis_server import free_port
from service.usecases.health import HEARTBEAT_RECENT_S
from service.usecases.stamp import build_stamper, stamp_next
from service.web.app import create_app
from service.wiring import Services
from tests.e2e.conftest import CLOSED_REDIS_URL, Api
from tests.e2e.test_api_errors import assert_problem
from tests.support.images import png_bytes

DEAD_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on 1


def _own_queue(api: Api, **settings: Any) -> Services:
    """The api's services on a fresh queue name (and other settings), behind a new app."""
    name = f"test-ready-{uuid.uuid4().hex[:8]}"
    return replace(api.services, settings=replace(api.services.settings, queue_name=name,
                                                   **settings))


def _readyz(services: Services) -> Any:
    return create_app(services).test_client().get("/readyz")


@contextmanager
def stamping_worker(services: Services) -> Iterator[Worker]:
    """An RQ worker registered on the stamping queue, as `chronoseal worker` registers."""
    queue = Queue(services.settings.queue_name, connection=services.redis)
    worker = Worker([queue], connection=services.redis, name=f"ready-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    worker.heartbeat()
    try:
        yield worker
    finally:
        worker.register_death()


def test_readyz_is_503_without_a_worker_and_200_once_one_heartbeats(api: Api) -> None:
    services = _own_queue(api)
    body = assert_problem(_readyz(services), 503, "unavailable")
    assert body["not_ready"] == ["workers"]
    assert body["parts"]["workers"]["state"] == "down"
    assert "heartbeat" in body["parts"]["workers"]["reason"]
    with stamping_worker(services):
        response = _readyz(services)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
    assert body["status"] == "ok"
    assert {name: part["state"] for name, part in body["parts"].items()} == {
        "database": "ok", "redis": "ok", "workers": "ok", "disk": "ok", "tsas": "ok"}
    assert body["parts"]["workers"]["live"] == 1
    assert body["tsas"] == {"builtin": {"state": "unknown", "reason": "never asked"}}


def test_readyz_does_not_count_a_worker_whose_heartbeat_is_old(api: Api) -> None:
    services = _own_queue(api)
    with stamping_worker(services) as worker:
        old = datetime.now(UTC) - timedelta(seconds=HEARTBEAT_RECENT_S + 5)
        services.redis.hset(worker.key, "last_heartbeat", utcformat(old))
        body = assert_problem(_readyz(services), 503, "unavailable")
    assert body["not_ready"] == ["workers"] and body["parts"]["workers"]["live"] == 0


def test_readyz_names_disk_when_free_space_is_below_the_threshold(api: Api) -> None:
    services = _own_queue(api, min_free_disk_bytes=2**62)  # more than any disk has
    with stamping_worker(services):
        body = assert_problem(_readyz(services), 503, "unavailable")
    assert body["not_ready"] == ["disk"]
    disk = body["parts"]["disk"]
    assert disk["state"] == "down" and "min_free_disk_bytes" in disk["reason"]
    assert disk["free_bytes"] < disk["min_free_bytes"]


def _fail_builtin_tsa(api: Api, services: Services) -> None:
    """Register an upload and let the stamping code ask a built-in TSA port nobody serves."""
    assert api.post_image(png_bytes(8, 8)).status_code == 202
    stamper = build_stamper(services, "readyz-test")
    try:
        stamp_next(services, stamper)
    finally:
        stamper.close()


def test_readyz_names_a_down_tsa_and_is_503_below_min_tokens(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(tsa_port=free_port(), batch_max_wait_ms=0)
    services = _own_queue(api)
    _fail_builtin_tsa(api, services)
    with stamping_worker(services):
        body = assert_problem(_readyz(services), 503, "unavailable")
        builtin = body["tsas"]["builtin"]
        assert builtin["state"] == "down" and builtin["reason"] and "failed_at" in builtin
        assert body["not_ready"] == ["tsas"]
        assert body["parts"]["tsas"]["usable"] == 0
        # A second TSA never asked is not down: one usable TSA is enough for min_tokens 1 ...
        two = replace(services, settings=replace(services.settings,
                                                 tsas=("builtin", "freetsa")))
        response = _readyz(two)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["tsas"]["builtin"]["state"] == "down"
        # ... and not for min_tokens 2.
        body = assert_problem(_readyz(replace(two, settings=replace(two.settings, min_tokens=2))),
                              503, "unavailable")
        assert body["not_ready"] == ["tsas"] and body["parts"]["tsas"]["usable"] == 1


def test_readyz_names_redis_and_the_database_when_they_are_down(
    make_api: Callable[..., Api],
) -> None:
    down = make_api(redis_url=CLOSED_REDIS_URL).services
    body = assert_problem(_readyz(down), 503, "unavailable")
    assert body["parts"]["redis"]["state"] == "down"
    assert body["parts"]["workers"]["state"] == "unknown"
    assert "redis" in body["not_ready"] and "database" not in body["not_ready"]
    dead = create_engine(DEAD_DATABASE_URL, connect_args={"connect_timeout": 1})
    body = assert_problem(_readyz(replace(down, engine=dead)), 503, "unavailable")
    assert body["parts"]["database"] == {"state": "down", "reason": "does not answer"}
    assert body["parts"]["tsas"]["state"] == "unknown"
