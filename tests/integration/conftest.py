"""Database fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL: a fresh database `chronoseal_test_<random>` per test session on 127.0.0.1:5432
(user postgres, trust auth; override with CHRONOSEAL_TEST_PG_URL), dropped at the end. If the
server does not answer, the fixture tries to start the local cluster; if it still does not
answer the PostgreSQL tests are skipped with the reason, or fail when CI=true.

Reusable fixtures: `db_backend` ("sqlite" | "postgresql"), `db_url` (migrated, empty),
`db_engine` (an Engine on it), `empty_db_url` (no schema at all), and the factories
`make_api_key(name=...)` and `make_receipt(api_key_id=None, **fields)`; `services` (the
wired Services over `db_engine`, the real Redis and a queue of its own) for use-case tests.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from rq import Queue
from sqlalchemy import Engine, make_url

from service.settings import load_settings
from service.storage import (
    ApiKey,
    Receipt,
    create_api_key,
    insert_receipt,
    make_engine,
    upgrade,
    write_transaction,
)
from service.storage.tables import metadata as schema_metadata
from service.wiring import Services

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_PROBE_TIMEOUT_S = 3  # a local server answers at once; don't stall the suite on a dead one
REDIS_URL = os.environ.get("CHRONOSEAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_START_WAIT_S = 15  # a cluster started by the fixture needs a few seconds for recovery
# Every table of the schema, so TRUNCATE keeps up as migrations add tables.
TABLES = tuple(t.name for t in reversed(schema_metadata.sorted_tables))


def _admin_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_answers(url: str) -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(_admin_conninfo(url), connect_timeout=PG_PROBE_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip()


def _start_local_cluster() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        return "no local cluster under /etc/postgresql to start"
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command)}: {exc}"
    output = (done.stderr or done.stdout).strip()
    return f"{' '.join(command)} exited {done.returncode}: {output}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a PostgreSQL database to create test databases from; skips (or fails in CI)."""
    url = os.environ.get("CHRONOSEAL_TEST_PG_URL", DEFAULT_PG_URL)
    problem = _pg_answers(url)
    if problem is not None:
        started = _start_local_cluster()
        deadline = time.monotonic() + PG_START_WAIT_S
        while (problem := _pg_answers(url)) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        if problem is not None:
            reason = f"PostgreSQL at {make_url(url).render_as_string()} unreachable: {problem}"
            reason += f" (tried: {started})"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def pg_database_factory(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory creating an empty, uniquely named PostgreSQL database; all dropped at the end."""
    created: list[str] = []

    def create() -> str:
        name = f"chronoseal_test_{secrets.token_hex(6)}"
        with psycopg.connect(_admin_conninfo(pg_admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield create
    with psycopg.connect(_admin_conninfo(pg_admin_url), autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_session_url(pg_database_factory: Callable[[], str]) -> str:
    """One migrated PostgreSQL database for the session; `db_url` empties it per test."""
    url = pg_database_factory()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test: faster than migrating each time."""
    path = tmp_path_factory.mktemp("sqlite-template") / "chronoseal.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a migrated database with empty tables, on the test's backend."""
    if db_backend == "sqlite":
        path = tmp_path / "chronoseal.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_session_url")
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    return url


@pytest.fixture
def empty_db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database with no schema at all (for migration tests)."""
    if db_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    factory: Callable[[], str] = request.getfixturevalue("pg_database_factory")
    return factory()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_api_key(db_engine: Engine) -> Callable[..., tuple[ApiKey, str]]:
    """Factory `make_api_key(name="test")` -> (ApiKey, secret), committed."""

    def factory(name: str = "test") -> tuple[ApiKey, str]:
        with write_transaction(db_engine) as conn:
            return create_api_key(conn, name)

    return factory


@pytest.fixture
def make_receipt(
    db_engine: Engine, make_api_key: Callable[..., tuple[ApiKey, str]]
) -> Callable[..., Receipt]:
    """Factory `make_receipt(api_key_id=None, **fields)` -> a committed pending Receipt.

    Without `api_key_id` a key is created. The manifest is a small JSON document made unique
    by a counter, and its digest is its real SHA-256.
    """
    counter = iter(range(1_000_000))

    def factory(api_key_id: str | None = None, **fields: Any) -> Receipt:
        if api_key_id is None:
            api_key_id = make_api_key()[0].id
        manifest = fields.pop("manifest_jcs", b'{"n":%d,"v":1}' % next(counter))
        values: dict[str, Any] = {
            "image_sha256": hashlib.sha256(manifest + b"image").hexdigest(),
            "manifest_jcs": manifest,
            "manifest_digest": hashlib.sha256(manifest).hexdigest(),
        }
        values.update(fields)
        with write_transaction(db_engine) as conn:
            return insert_receipt(conn, api_key_id=api_key_id, **values)

    return factory


@pytest.fixture
def services(db_engine: Engine, tmp_path: Path) -> Iterator[Services]:
    """Services over `db_engine` and the real Redis, with a queue (and key prefix) of its own."""
    queue = f"test-{secrets.token_hex(4)}"
    settings = load_settings(env={}, config_file=tmp_path / "absent.toml", queue_name=queue,
                             data_dir=str(tmp_path / "data"))
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    yield Services(settings, db_engine, client)
    for name in (queue, f"{queue}-background"):
        Queue(name, connection=client).delete()
    for key in client.scan_iter(f"chronoseal:{queue}:*"):
        client.delete(key)
    client.close()
