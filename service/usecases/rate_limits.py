"""Rate limits per API key, integration and client address: fixed windows counted in Redis.

Every API process counts in the same Redis, so a limit holds across processes and machines.
One request's counters (its key and its address, say) are incremented in one pipelined round
trip; a counter's Redis key names its window, so it is never reset, only left to expire.
A fixed window lets a client send up to twice its limit across a window boundary; the limits
are there to stop floods, not to meter, so that is accepted for one round trip per request.

Redis down fails open: requests go on unlimited, one warning a minute says so, and Redis is
asked again after REDIS_RETRY_S. Refusing every request because the limiter's store is down
would turn a Redis blip into an outage, while uploads themselves survive Redis being down
(the outbox enqueues them later); the limits protect capacity, not correctness.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from service.errors import RateLimitedError
from service.settings import Rate, Settings
from service.usecases.queueing import key_prefix

log = logging.getLogger(__name__)

REDIS_RETRY_S = 5.0  # after a Redis error, limits are off this long: no timeout per request
WARN_EVERY_S = 60.0  # one "limits are off" line a minute per process, not one per request
IPV6_PREFIX = 64  # one IPv6 host usually holds a whole /64: count the prefix, not the address
MAX_SUBJECT_CHARS = 64  # key and integration ids are ~30 characters, addresses at most 39


@dataclass(frozen=True)
class Counter:
    """One limit a request counts against: `rate` for `subject` (a key id, an address...)."""

    route: str  # register, search, verify, inbound, auth
    scope: str  # key, address, integration, failures
    subject: str
    rate: Rate


def address_subject(address: str | None) -> str:
    """The subject an address is counted as: IPv4 as is, IPv6 by its /64 prefix."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"  # not an address (a unix socket, a test client): one shared bucket
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def limiter_for(client: redis.Redis, settings: Settings) -> RateLimiter:
    """The limiter of one API process, its counters under the deployment's key prefix."""
    return RateLimiter(client, f"{key_prefix(settings)}:limits:")


class RateLimiter:
    """Counts requests in Redis under `prefix`; raises RateLimitedError past a limit."""

    def __init__(self, client: redis.Redis, prefix: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._off_until = 0.0  # monotonic: limits are off until then (Redis failed)
        self._warned_at = -math.inf

    def _key(self, counter: Counter, window: int) -> str:
        subject = counter.subject[:MAX_SUBJECT_CHARS]
        return (f"{self._prefix}{counter.route}:{counter.scope}:{subject}:"
                f"{counter.rate.period_s}:{window}")

    def _available(self) -> bool:
        return time.monotonic() >= self._off_until

    def _failed(self, exc: redis.RedisError) -> None:
        now = time.monotonic()
        with self._lock:
            self._off_until = now + REDIS_RETRY_S
            warn = now - self._warned_at >= WARN_EVERY_S
            if warn:
                self._warned_at = now
        if warn:
            log.warning("rate limits are off: Redis does not answer (%s); retrying in %.0f s",
                        type(exc).__name__, REDIS_RETRY_S)

    def hit(self, counters: Sequence[Counter], cost: int = 1) -> None:
        """Count one request (`cost` units: a batch counts its items) against every counter;
        RateLimitedError if one is past its limit."""
        if not counters or not self._available():
            return
        now = self._clock()
        windows = [int(now // c.rate.period_s) for c in counters]
        pipe = self._redis.pipeline(transaction=False)
        for counter, window in zip(counters, windows, strict=True):
            key = self._key(counter, window)
            pipe.incr(key, cost)
            pipe.expire(key, counter.rate.period_s + 1)  # the key names its window: no reset
        try:
            counts = pipe.execute()[::2]
        except redis.RedisError as exc:
            self._failed(exc)
            return
        self._raise_past(counters, windows, [int(c) for c in counts], now)

    def check(self, counter: Counter) -> None:
        """RateLimitedError if `counter` has already reached its limit; counts nothing."""
        if not self._available():
            return
        now = self._clock()
        window = int(now // counter.rate.period_s)
        try:
            count = int(self._redis.get(self._key(counter, window)) or 0)
        except redis.RedisError as exc:
            self._failed(exc)
            return
        self._raise_past([counter], [window], [count + 1], now)

    def _raise_past(self, counters: Sequence[Counter], windows: Sequence[int],
                    counts: Sequence[int], now: float) -> None:
        for counter, window, count in zip(counters, windows, counts, strict=True):
            if count > counter.rate.count:
                retry = max(1, math.ceil((window + 1) * counter.rate.period_s - now))
                raise RateLimitedError(
                    f"more than {counter.rate} {counter.route} requests for this "
                    f"{counter.scope}; retry in {retry} s", retry)
