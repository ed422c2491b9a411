"""Bearer API keys: `Authorization: Bearer <key>` on every /v1 route except the public ones.

The secret is looked up by its SHA-256 (usecases.keys), so comparing it takes the same time
whatever it is: there is no byte-by-byte comparison of secrets to time. Keys are never logged.
Valid keys are remembered for CHRONOSEAL_AUTH_CACHE_S seconds per process (web.key_cache).
Unknown and revoked keys are counted per client address: past
rate_limit_auth_failures_per_address, keys from that address are not looked up at all (429),
so guessing cannot make every request reach the database.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from service.usecases.keys import ApiKey, find_key, hash_secret
from service.usecases.rate_limits import Counter, address_subject
from service.web.context import current_services, key_cache, rate_limiter
from service.web.problems import UNAUTHORIZED, ApiError

MAX_KEY_CHARS = 256  # real keys are ~50 characters; longer headers are refused before hashing
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="chronoseal"'}

F = TypeVar("F", bound=Callable[..., Any])


def _unauthorized(detail: str, error: str | None = "invalid_token") -> ApiError:
    header = CHALLENGE["WWW-Authenticate"] + (f', error="{error}"' if error else "")
    return ApiError(UNAUTHORIZED, detail, headers={"WWW-Authenticate": header})


def bearer_secret() -> str:
    """The secret from the Authorization header, or a 401 ApiError when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise _unauthorized("Send the API key as 'Authorization: Bearer <key>'", error=None)
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_KEY_CHARS:
        raise _unauthorized("The Authorization header is not 'Bearer <key>'", "invalid_request")
    return secret


def client_address() -> str:
    """The subject this request's client address is counted as (an IPv6 host by its /64)."""
    return address_subject(request.remote_addr)


def authenticate() -> ApiKey:
    """The API key of this request (cached on `g`); 401 when missing, unknown or revoked."""
    cached: ApiKey | None = g.get("api_key")
    if cached is not None:
        return cached
    key = key_for_secret(bearer_secret())
    g.api_key = key
    return key


def key_for_secret(secret: str) -> ApiKey:
    """The active key `secret` names (the bearer header's or the sign-in form's); 401 when
    unknown or revoked, 429 once this address has guessed too often."""
    cache = key_cache()
    key_hash = hash_secret(secret)
    key = cache.get(key_hash)
    if key is None:
        services = current_services()
        rate = services.settings.rate_limit_auth_failures_per_address
        failures = Counter("failed-auth", "address", client_address(), rate) if rate else None
        if failures is not None:
            rate_limiter().check(failures)  # before the lookup: a guesser stops costing queries
        key = find_key(services, key_hash)
        if key is None:
            if failures is not None:
                rate_limiter().hit([failures])
            raise _unauthorized("The API key is unknown or revoked")
        cache.put(key_hash, key)
    return key


def require_key(view: F) -> F:
    """Decorator: the view runs only for a valid key; `g.api_key` holds it."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        authenticate()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
