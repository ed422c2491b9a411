"""Build the shared objects (settings, database engine, Redis) once, the same way for every part.

The API's app factory, the worker bootstrap and the CLI all call `build_services`, so an API node
and a worker on another machine agree on every setting and connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import redis
from sqlalchemy.engine import Engine

from service.settings import Settings, load_settings
from service.storage.uploads import UploadStore, upload_store
from service.webhooks.secretbox import KEY_FILE_NAME, SecretBox, load_keys
from service.webhooks.ssrf import Resolver, system_resolver

log = logging.getLogger(__name__)
DATA_DIR_MODE = 0o700  # keys, the SQLite database and uploads: the service's user only


@dataclass(frozen=True)
class Services:
    """Connections and settings passed to handlers and jobs (no import-time globals)."""

    settings: Settings
    engine: Engine
    redis: redis.Redis
    # Host names to addresses for the SSRF guard; a test passes its own to map names it owns.
    resolver: Resolver = field(default=system_resolver)

    @cached_property
    def secrets(self) -> SecretBox:
        """Seals and opens webhook, integration and callback secrets (settings.secrets_key,
        else the key file in the data directory, made on first use)."""
        return secret_box(self.settings)

    @cached_property
    def uploads(self) -> UploadStore:
        """Where uploads wait for perceptual hashing (settings.uploads_dir)."""
        settings = self.settings
        return upload_store(settings.uploads_dir, settings.data_path,
                            self.engine.dialect.name)


def build_services(settings: Settings | None = None, *, migrate: bool = True) -> Services:
    """Create the engine (applying migrations unless told not to) and the Redis client."""
    from service.storage.engine import make_engine
    from service.storage.migrate import upgrade

    settings = settings or load_settings()
    make_data_dir(settings.data_path)
    engine = make_engine(settings.effective_database_url)
    client = redis.Redis.from_url(
        settings.effective_redis_url, socket_timeout=5, socket_connect_timeout=2
    )
    services = Services(settings=settings, engine=engine, redis=client)
    box = services.secrets  # the key file is made on first start, before any secret is
    if migrate:
        upgrade(engine, secrets=box)
    return services


def secret_box(settings: Settings) -> SecretBox:
    """The SecretBox the settings name (CHRONOSEAL_SECRETS_KEY, else the data dir's key file)."""
    return SecretBox(load_keys(settings.secrets_key, settings.data_path / KEY_FILE_NAME))


def make_data_dir(path: Path) -> None:
    """Create the data directory if needed and make it private (DATA_DIR_MODE)."""
    path.mkdir(parents=True, exist_ok=True, mode=DATA_DIR_MODE)
    if path.stat().st_mode & 0o777 != DATA_DIR_MODE:
        try:
            path.chmod(DATA_DIR_MODE)
        except OSError as exc:  # mounted read-only, or another user's: say so, run anyway
            log.warning("cannot make the data directory %s private (mode %o): %s", path,
                        DATA_DIR_MODE, exc.strerror)
