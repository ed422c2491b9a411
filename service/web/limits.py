"""Rate limits on the routes that cost the most or need no key: register, search, verify and
inbound hooks (429 problem+json with Retry-After; usecases.rate_limits counts).

A request counts against its client address and, when it brings an API key, against the key,
in one Redis round trip before the view does any work. The address is the peer's, or the one
`trusted_proxies` proxies in front wrote into X-Forwarded-For (ProxyFix, in the app factory).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import request

from service.settings import Rate, Settings
from service.usecases.rate_limits import Counter
from service.web.auth import authenticate, client_address
from service.web.context import current_services, rate_limiter

F = TypeVar("F", bound=Callable[..., Any])
KEYED_ROUTES = ("register", "search", "verify")  # inbound is counted per integration instead


def _rate(settings: Settings, route: str, scope: str) -> Rate | None:
    rate: Rate | None = getattr(settings, f"rate_limit_{route}_per_{scope}")
    return rate


def address_counter(settings: Settings, route: str) -> list[Counter]:
    """The per-address counter of `route`, or none when that limit is off."""
    rate = _rate(settings, route, "address")
    return [Counter(route, "address", client_address(), rate)] if rate else []


def limited(route: str) -> Callable[[F], F]:
    """Decorator: count the request against its address and its key (when it sends one) before
    the view runs; a bad key is a 401 here, as it would be in the view."""
    assert route in KEYED_ROUTES

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            charge(route)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def charge(route: str, cost: int = 1) -> None:
    """Count `cost` requests of `route` against the address and the key (a batch's items
    beyond the first, once they are counted: 1,000 registrations cost as much in one request
    as in a thousand)."""
    settings = current_services().settings
    counters = address_counter(settings, route)
    per_key = _rate(settings, route, "key")
    if per_key is not None and request.headers.get("Authorization"):
        counters.append(Counter(route, "key", authenticate().id, per_key))
    rate_limiter().hit(counters, cost)
