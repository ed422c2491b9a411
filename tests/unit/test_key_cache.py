"""KeyCache: remembers valid keys for ttl_s, never past it, never when off, within a bound."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from service.storage.keys import ApiKey
from service.web.key_cache import KeyCache


def _key(n: int = 1) -> ApiKey:
    return ApiKey(id=f"key_{n}", name="k", prefix="cs_abcd", created_at=datetime.now(UTC),
                  revoked_at=None)


def test_a_key_is_remembered_until_its_ttl_passes() -> None:
    cache = KeyCache(ttl_s=0.1)
    key = _key()
    cache.put("h1", key)
    assert cache.get("h1") is key
    time.sleep(0.12)
    assert cache.get("h1") is None


def test_ttl_zero_remembers_nothing() -> None:
    cache = KeyCache(ttl_s=0)
    cache.put("h1", _key())
    assert cache.get("h1") is None


def test_the_cache_is_bounded() -> None:
    cache = KeyCache(ttl_s=60, max_entries=3)
    for n in range(10):
        cache.put(f"h{n}", _key(n))
    remembered = [n for n in range(10) if cache.get(f"h{n}") is not None]
    assert 1 <= len(remembered) <= 3 and remembered[-1] == 9
