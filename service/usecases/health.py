"""Health: does each backing service answer (the database, Redis)?"""

from __future__ import annotations

import logging

import redis

from service.errors import DatabaseUnavailableError
from service.storage.engine import ping
from service.wiring import Services

log = logging.getLogger(__name__)
OK, UNAVAILABLE = "ok", "unavailable"


def check_parts(services: Services) -> dict[str, str]:
    """Each part's state, "ok" or "unavailable" (the cause goes to the log, never out)."""
    parts = {"database": OK, "redis": OK}
    try:
        ping(services.engine)
    except DatabaseUnavailableError as exc:
        log.warning("health: %s", exc)
        parts["database"] = UNAVAILABLE
    try:
        services.redis.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("health: redis unavailable: %s", exc.__class__.__name__)
        parts["redis"] = UNAVAILABLE
    return parts
