"""Bearer API keys: `Authorization: Bearer <key>` on every /v1 route except the public ones.

The secret is looked up by its SHA-256 (usecases.keys), so comparing it takes the same time
whatever it is: there is no byte-by-byte comparison of secrets to time. Keys are never logged.
Valid keys are remembered for CHRONOSEAL_AUTH_CACHE_S seconds per process (web.key_cache).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from service.usecases.keys import ApiKey, find_key, hash_secret
from service.web.context import current_services, key_cache
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


def authenticate() -> ApiKey:
    """The API key of this request (cached on `g`); 401 when missing, unknown or revoked."""
    cached: ApiKey | None = g.get("api_key")
    if cached is not None:
        return cached
    secret = bearer_secret()
    cache = key_cache()
    key_hash = hash_secret(secret)
    key = cache.get(key_hash)
    if key is None:
        key = find_key(current_services(), key_hash)
        if key is None:
            raise _unauthorized("The API key is unknown or revoked")
        cache.put(key_hash, key)
    g.api_key = key
    return key


def require_key(view: F) -> F:
    """Decorator: the view runs only for a valid key; `g.api_key` holds it."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        authenticate()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
