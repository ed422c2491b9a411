"""Where a request finds the shared Services and the stamping signal: on the app, put there by
the factory."""

from __future__ import annotations

from functools import partial

from flask import Flask, current_app

from service.wiring import Services
from workers.coalesce import CoalescedCall
from workers.queueing import enqueue_stamping

EXTENSION_KEY = "chronoseal"
STAMP_SIGNAL_KEY = "chronoseal.stamp_signal"
# One Redis call per 20 ms and API process at most, instead of one per upload; small beside
# the batch's own wait (batch_max_wait_ms, 200 ms by default).
SIGNAL_DELAY_S = 0.02


def attach(app: Flask, services: Services) -> None:
    """Make `services`, and a coalesced stamping signal over them, reachable from handlers."""
    app.extensions[EXTENSION_KEY] = services
    app.extensions[STAMP_SIGNAL_KEY] = CoalescedCall(
        partial(enqueue_stamping, services), "chronoseal-stamp-signal", SIGNAL_DELAY_S)


def current_services() -> Services:
    """The Services of the app handling this request."""
    services: Services = current_app.extensions[EXTENSION_KEY]
    return services


def stamp_signal() -> CoalescedCall:
    """Poke after committing receipts: a stamp job will claim them (workers.queueing)."""
    return stamp_signal_of(current_app)


def stamp_signal_of(app: Flask) -> CoalescedCall:
    """The stamping signal of `app` (outside a request: tests, shutdown)."""
    signal: CoalescedCall = app.extensions[STAMP_SIGNAL_KEY]
    return signal
