"""API fixtures: the Flask app over a real database (SQLite and PostgreSQL) and the real Redis.

Each test session uses its own RQ queue name (so no running worker takes our jobs) and deletes
only its own Redis keys afterwards. `api` gives a test client, keys and row counts;
`worker_api` adds a built-in TSA and `run()`, which works the queues in this process (burst).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from service.settings import load_settings
from service.storage import create_api_key, revoke_api_key, write_transaction
from service.storage.tables import api_keys, batches, receipts, tokens
from service.usecases.outbox import pump_once
from service.usecases.queueing import hash_flag_key, key_prefix, stamp_flag_key
from service.web.app import create_app
from service.web.context import signals_of
from service.webhooks.ssrf import Resolver, system_resolver
from service.wiring import Services
from tests.integration import conftest as _db
from tests.support.running_up import RunningUp, running_up
from tests.support.stamping_env import builtin_tsa
from workers import bootstrap

if TYPE_CHECKING:  # Playwright loads only for the page tests that use a browser
    from playwright.sync_api import Browser

# The database fixtures of tests/integration (SQLite and PostgreSQL), offered here as well.
db_backend = _db.db_backend
db_url = _db.db_url
db_engine = _db.db_engine
pg_admin_url = _db.pg_admin_url
pg_database_factory = _db.pg_database_factory
pg_session_url = _db.pg_session_url
sqlite_template = _db.sqlite_template

REDIS_URL = os.environ.get("CHRONOSEAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: "Redis is down"
SMALL_UPLOAD_LIMIT = 64 * 1024  # tests of the size limit use a small one
LOOPBACK = ("127.0.0.1/32",)  # webhook receivers of the tests listen here


def _redis_or_fail() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
    return client


@pytest.fixture(scope="session")
def queue_name() -> Iterator[str]:
    """A queue name of our own; its RQ and Chronoseal keys are deleted at the end."""
    name = f"test-api-{secrets.token_hex(4)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        from rq import Queue

        Queue(name, connection=client).empty()  # its jobs and the queue key
        for pattern in (f"rq:*:{name}*", f"rq:*:{name}:*", f"chronoseal:{name}:*"):
            keys = list(client.scan_iter(match=pattern))
            if keys:
                client.delete(*keys)
        client.srem("rq:queues", f"rq:queue:{name}")
    except redis.RedisError:
        pass
    finally:
        client.close()


@dataclass
class Api:
    """A test client on a real app, with helpers to make keys and count rows."""

    app: Flask
    client: FlaskClient
    services: Services
    secret: str
    key_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def new_key(self, name: str = "other") -> tuple[str, str]:
        """(key id, secret) of another key."""
        with write_transaction(self.services.engine) as conn:
            key, secret = create_api_key(conn, name)
        return key.id, secret

    def revoke(self, key_id: str) -> None:
        with write_transaction(self.services.engine) as conn:
            revoke_api_key(conn, key_id)

    def counts(self) -> dict[str, int]:
        """Rows per table: compared before and after a bad request."""
        with self.services.engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (api_keys, receipts, batches, tokens)
            }

    def post_image(self, data: bytes, headers: dict[str, str] | None = None,
                   filename: str = "image.png", **fields: Any) -> Any:
        form: dict[str, Any] = {"image": (io.BytesIO(data), filename), **fields}
        return self.client.post("/v1/stamps", data=form, content_type="multipart/form-data",
                                headers={**self.auth, **(headers or {})})


@pytest.fixture
def make_api(
    db_engine: Engine, queue_name: str, tmp_path: Path
) -> Callable[..., Api]:
    """Factory `make_api(redis_url=..., resolver=..., **settings)` -> Api over the test's
    database; `resolver` maps host names for the SSRF guard (default: the system's)."""
    made: list[Services] = []
    apps: list[Flask] = []

    def factory(redis_url: str | None = None, resolver: Resolver = system_resolver,
                **overrides: Any) -> Api:
        if redis_url is None:
            _redis_or_fail()
        settings = load_settings(
            env={}, config_file=tmp_path / "absent.toml",
            data_dir=str(tmp_path / "data"), queue_name=queue_name,
            redis_url=redis_url or REDIS_URL, **overrides,
        )
        client = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=2,
                                      socket_connect_timeout=1)
        services = Services(settings=settings, engine=db_engine, redis=client, resolver=resolver)
        made.append(services)
        app = create_app(services)
        app.testing = True
        apps.append(app)
        with write_transaction(db_engine) as conn:
            key, secret = create_api_key(conn, "test")
        return Api(app, app.test_client(), services, secret, key.id)

    yield factory  # type: ignore[misc]
    for app in apps:
        signals_of(app).close()  # no delayed signal may reach the next test's queue
    for services in made:
        with contextlib.suppress(redis.RedisError):  # some tests run with Redis "down"
            services.redis.delete(stamp_flag_key(services.settings),
                                  hash_flag_key(services.settings))
            # Rate-limit counters: the session shares one queue, each test starts at zero.
            limits = list(services.redis.scan_iter(
                match=f"{key_prefix(services.settings)}:limits:*"))
            if limits:
                services.redis.delete(*limits)
        services.redis.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The API with default settings except a small upload limit."""
    return make_api(max_upload_bytes=SMALL_UPLOAD_LIMIT)


@pytest.fixture
def make_worker_api(make_api: Callable[..., Api], tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Factory `make_worker_api(**settings)`: an API whose settings name a running built-in TSA;
    `run()` works the queue (burst). One per test."""
    with contextlib.ExitStack() as stack:

        def factory(**overrides: Any) -> Api:
            tsa = stack.enter_context(builtin_tsa(tmp_path / "tsa"))
            config = tmp_path / "tsa-test.toml"
            config.write_text(tsa.toml())
            api = make_api(tsa_config=(str(config),), tsas=(tsa.name,), batch_max_wait_ms=0,
                           webhook_allowlist=(*LOOPBACK, "localhost"),
                           webhook_retry_schedule_s=(0.0, 0.0), **overrides)
            context = bootstrap.install(bootstrap.build_context(api.services))

            def run() -> None:
                for _ in range(3):  # jobs enqueue jobs: register -> stamp; outbox -> deliver
                    signals_of(api.app).flush()  # what the API's signal threads do soon
                    pump_once(api.services)
                    bootstrap.make_rq_worker(context).work(burst=True, logging_level="WARNING")

            def close() -> None:
                context.stamper.close()
                bootstrap._context = None  # noqa: SLF001 - the process-wide context of workers

            api.run = run  # type: ignore[attr-defined]
            stack.callback(close)
            return api

        yield factory


@pytest.fixture
def worker_api(make_worker_api: Callable[..., Api]) -> Api:
    """An API whose settings name a running built-in TSA; `run()` works the queue (burst)."""
    return make_worker_api()


@pytest.fixture(scope="package")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    """One whole service for the page tests in a browser (test_pages_a11y, test_pages_browser;
    a module may define its own `up`, as test_client_watch does),
    keeping uploaded images so pages show thumbnails: a start of `up` takes 20-30 s on two
    cores. Their pictures differ (each module its own seeds), so they do not see each other's."""
    with running_up(tmp_path_factory.mktemp("pages-up"),
                    extra_env={"CHRONOSEAL_KEEP_IMAGES": "true"}) as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the page tests."""
    from tests.support.browser import chromium

    with chromium() as launched:
        yield launched
