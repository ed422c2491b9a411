"""Build the shared objects (settings, database engine, Redis) once, the same way for every part.

The API's app factory, the worker bootstrap and the CLI all call `build_services`, so an API node
and a worker on another machine agree on every setting and connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis
from sqlalchemy.engine import Engine

from service.settings import Settings, load_settings
from service.storage.uploads import UploadStore, upload_store
from service.webhooks.ssrf import Resolver, system_resolver


@dataclass(frozen=True)
class Services:
    """Connections and settings passed to handlers and jobs (no import-time globals)."""

    settings: Settings
    engine: Engine
    redis: redis.Redis
    # Host names to addresses for the SSRF guard; a test passes its own to map names it owns.
    resolver: Resolver = field(default=system_resolver)

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
    settings.data_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    if migrate:
        upgrade(engine)
    client = redis.Redis.from_url(
        settings.effective_redis_url, socket_timeout=5, socket_connect_timeout=2
    )
    return Services(settings=settings, engine=engine, redis=client)
