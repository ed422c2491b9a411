"""Where a request finds the shared Services and the work signals: on the app, put there by the
factory."""

from __future__ import annotations

from flask import Flask, current_app

from service.usecases.rate_limits import RateLimiter, limiter_for
from service.usecases.signals import Signals, coalesced_signals
from service.web.key_cache import KeyCache
from service.wiring import Services

EXTENSION_KEY = "chronoseal"
SIGNALS_KEY = "chronoseal.signals"
KEY_CACHE_KEY = "chronoseal.key_cache"
LIMITER_KEY = "chronoseal.rate_limiter"


def attach(app: Flask, services: Services) -> None:
    """Make `services`, coalesced work signals over them, the key cache and the rate limiter
    reachable."""
    app.extensions[EXTENSION_KEY] = services
    app.extensions[KEY_CACHE_KEY] = KeyCache(services.settings.auth_cache_s)
    app.extensions[LIMITER_KEY] = limiter_for(services.redis, services.settings)
    app.extensions[SIGNALS_KEY] = coalesced_signals(services)


def current_services() -> Services:
    """The Services of the app handling this request."""
    services: Services = current_app.extensions[EXTENSION_KEY]
    return services


def key_cache() -> KeyCache:
    """The valid-key cache of the app handling this request (web.key_cache)."""
    cache: KeyCache = current_app.extensions[KEY_CACHE_KEY]
    return cache


def rate_limiter() -> RateLimiter:
    """The rate limiter of the app handling this request (usecases.rate_limits)."""
    limiter: RateLimiter = current_app.extensions[LIMITER_KEY]
    return limiter


def signals() -> Signals:
    """The work signals of the app handling this request."""
    return signals_of(current_app)


def signals_of(app: Flask) -> Signals:
    """The work signals of `app` (outside a request: tests, shutdown)."""
    found: Signals = app.extensions[SIGNALS_KEY]
    return found
