"""API keys: create (the secret is shown once), list, revoke, and find the key of a request.

Only a key's SHA-256 is stored and looked up, so comparing a secret takes the same time
whatever it is: there is no byte-by-byte comparison of secrets to time. Keys are never logged.
"""

from __future__ import annotations

from service.errors import InvalidInputError
from service.storage.engine import write_transaction
from service.storage.keys import (
    ApiKey,
    create_api_key,
    find_api_key_by_hash,
    hash_secret,
    list_api_keys,
    revoke_api_key,
)
from service.storage.tables import NAME_LENGTH
from service.wiring import Services

__all__ = ["NAME_LENGTH", "ApiKey", "create_key", "find_key", "hash_secret", "list_keys",
           "revoke_key", "single_active_key"]


def checked_name(name: str) -> str:
    """A key's or integration's name, stripped; InvalidInputError unless 1..NAME_LENGTH."""
    name = name.strip()
    if not 0 < len(name) <= NAME_LENGTH:
        raise InvalidInputError(f"name must be 1..{NAME_LENGTH} characters")
    return name


def create_key(services: Services, name: str) -> tuple[ApiKey, str]:
    """A new key and its secret (shown once: only its hash is kept)."""
    name = checked_name(name)
    with write_transaction(services.engine) as conn:
        return create_api_key(conn, name)


def list_keys(services: Services, *, include_revoked: bool = True) -> list[ApiKey]:
    with services.engine.connect() as conn:
        return list_api_keys(conn, include_revoked=include_revoked)


def revoke_key(services: Services, id_or_prefix: str) -> ApiKey | None:
    """Revoke by id or display prefix; None when there is no such key (AmbiguousKeyError when
    a prefix matches several)."""
    with write_transaction(services.engine) as conn:
        return revoke_api_key(conn, id_or_prefix)


def single_active_key(services: Services, id_or_prefix: str) -> ApiKey | None:
    """The one active key with this id or display prefix, else None."""
    keys = [k for k in list_keys(services, include_revoked=False)
            if id_or_prefix in (k.id, k.prefix)]
    return keys[0] if len(keys) == 1 else None


def find_key(services: Services, key_hash: str) -> ApiKey | None:
    """The active key whose secret hashes to `key_hash` (hash_secret), or None."""
    with services.engine.connect() as conn:
        return find_api_key_by_hash(conn, key_hash)
