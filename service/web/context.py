"""Where a request finds the shared Services and the work signals: on the app, put there by the
factory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from flask import Flask, current_app

from service.web.key_cache import KeyCache
from service.wiring import Services
from workers.coalesce import CoalescedCall
from workers.queueing import enqueue_hashing, enqueue_stamping

EXTENSION_KEY = "chronoseal"
SIGNALS_KEY = "chronoseal.signals"
KEY_CACHE_KEY = "chronoseal.key_cache"
# One Redis call per 20 ms, signal and API process at most, instead of one per upload; small
# beside the batch's own wait (batch_max_wait_ms, 200 ms by default).
SIGNAL_DELAY_S = 0.02


@dataclass(frozen=True)
class Signals:
    """Poke after a commit: `stamping` for pending receipts, `hashing` for kept uploads."""

    stamping: CoalescedCall
    hashing: CoalescedCall

    def flush(self) -> None:
        """Signal now, in this thread (tests; what the signal threads do ~20 ms later)."""
        self.stamping.flush()
        self.hashing.flush()

    def close(self) -> None:
        """Stop both threads after signalling what is pending."""
        self.stamping.close()
        self.hashing.close()


def attach(app: Flask, services: Services) -> None:
    """Make `services`, coalesced work signals over them and the key cache reachable."""
    app.extensions[EXTENSION_KEY] = services
    app.extensions[KEY_CACHE_KEY] = KeyCache(services.settings.auth_cache_s)
    app.extensions[SIGNALS_KEY] = Signals(
        CoalescedCall(partial(enqueue_stamping, services), "chronoseal-stamp-signal",
                      SIGNAL_DELAY_S),
        CoalescedCall(partial(enqueue_hashing, services), "chronoseal-hash-signal",
                      SIGNAL_DELAY_S),
    )


def current_services() -> Services:
    """The Services of the app handling this request."""
    services: Services = current_app.extensions[EXTENSION_KEY]
    return services


def key_cache() -> KeyCache:
    """The valid-key cache of the app handling this request (web.key_cache)."""
    cache: KeyCache = current_app.extensions[KEY_CACHE_KEY]
    return cache


def signals() -> Signals:
    """The work signals of the app handling this request."""
    return signals_of(current_app)


def signals_of(app: Flask) -> Signals:
    """The work signals of `app` (outside a request: tests, shutdown)."""
    found: Signals = app.extensions[SIGNALS_KEY]
    return found
