"""Browser sessions of the creator pages: an API key signed in once, remembered server-side.

The browser holds only a random session id (cookie); Redis holds the SHA-256 of the key and a
CSRF token, for SESSION_TTL_S. The key itself is never stored, and each request looks the key up
again, so a revoked key ends its sessions at once. Ids are compared by lookup, not byte by byte.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from service.usecases.keys import ApiKey, find_key
from service.usecases.queueing import key_prefix
from service.wiring import Services

SESSION_TTL_S = 8 * 3600  # a working day; signing in again is cheap, a stolen cookie expires
SESSION_ID_BYTES = 32  # 256 random bits: not guessable
MAX_SESSION_ID_CHARS = 64  # token_urlsafe(32) is 43 characters; longer is not ours


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its id, the key it acts as, and the CSRF token of its forms."""

    id: str
    key: ApiKey
    csrf: str


def _name(services: Services, session_id: str) -> str:
    return f"{key_prefix(services.settings)}:session:{session_id}"


def sign_in(services: Services, key: ApiKey, key_hash: str) -> Session:
    """A new session acting as `key` (found by its secret's hash `key_hash`)."""
    session = Session(secrets.token_urlsafe(SESSION_ID_BYTES), key, secrets.token_urlsafe(32))
    value = json.dumps({"key_hash": key_hash, "csrf": session.csrf})
    services.redis.set(_name(services, session.id), value, ex=SESSION_TTL_S)
    return session


def current_session(services: Services, session_id: str | None) -> Session | None:
    """The live session `session_id` names, or None (expired, signed out, key revoked)."""
    if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
        return None
    raw = services.redis.get(_name(services, session_id))
    if raw is None:
        return None
    stored = json.loads(raw)
    key = find_key(services, stored["key_hash"])
    if key is None:
        return None
    return Session(session_id, key, stored["csrf"])


def sign_out(services: Services, session_id: str) -> None:
    """End the session (its cookie then names nothing)."""
    if len(session_id) <= MAX_SESSION_ID_CHARS:
        services.redis.delete(_name(services, session_id))
