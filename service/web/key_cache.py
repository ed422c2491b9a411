"""Valid API keys remembered for a few seconds per API process, so most requests skip the lookup.

Looking the key up cost about a fifth of an upload's CPU in the API (a pooled connection, a
SELECT and a rollback; bench/e2e.py). A key found valid is remembered for `ttl_s` seconds, by
the SHA-256 of its secret (the secret itself is never kept); unknown and revoked keys are never
remembered, so a new key works at once and guessing always reaches the database.

The price is stated in the README: a revoked key keeps working for at most `ttl_s` seconds on
an API process that saw it just before (CHRONOSEAL_AUTH_CACHE_S; 0 turns the cache off).
"""

from __future__ import annotations

import threading
import time

from service.usecases.keys import ApiKey

MAX_ENTRIES = 4096  # keys in use at once per process; past this the cache starts over


class KeyCache:
    """key_hash -> (ApiKey, expiry on the monotonic clock); thread-safe, bounded."""

    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> ApiKey | None:
        """The remembered key, or None when absent or expired."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        key, expires = entry
        if time.monotonic() >= expires:
            with self._lock:
                self._entries.pop(key_hash, None)
            return None
        return key

    def put(self, key_hash: str, key: ApiKey) -> None:
        """Remember a key just found valid (no-op when the cache is off)."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # bounded memory; the next lookups refill it
            self._entries[key_hash] = (key, time.monotonic() + self.ttl_s)
