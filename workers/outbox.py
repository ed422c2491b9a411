"""The outbox pump: every worker polls the database for due webhook deliveries and inbound
messages and enqueues one RQ job per row; a Redis key gives one worker the turn per interval.

Why polling an outbox rather than enqueueing right after each commit: the rows are written in
the transactions that change receipts (storage/tokens.py, storage/sweep.py), deep inside
stamping code that must not know RQ; polling finds them whatever process committed them, also
after Redis lost its jobs or a worker died mid-attempt (claims are leases: a row whose job
vanished is due again when its lease passes). The cost is at most one poll interval (1 s by
default) of latency on the "immediate" first attempt, and one indexed query per interval.
"""

from __future__ import annotations

import logging
import threading

import redis

from service.settings import Settings
from service.storage.engine import write_transaction
from service.storage.inbound import claim_due_inbound, inbound_due
from service.storage.webhooks import claim_due_deliveries, deliveries_due
from service.webhooks.delivery import DeliveryOptions
from service.webhooks.inbound import InboundOptions
from service.webhooks.ssrf import Allowlist
from service.webhooks.transport import Timeouts
from service.wiring import Services
from workers import queueing

log = logging.getLogger(__name__)

INBOUND_LEASE_S = 300.0  # an image download and a hash; a lost job is retried after this


def delivery_options(settings: Settings) -> DeliveryOptions:
    return DeliveryOptions.from_settings(settings)


def inbound_options(services: Services) -> InboundOptions:
    settings = services.settings
    return InboundOptions(
        Allowlist.parse(settings.webhook_allowlist), settings.max_upload_bytes,
        Timeouts(settings.webhook_connect_timeout_s, settings.webhook_timeout_s),
        settings.webhook_retry_schedule_s, uploads=services.uploads)


def turn_key(services: Services) -> str:
    return f"{queueing.key_prefix(services.settings)}:outbox-turn"


def pump_once(services: Services) -> int:
    """Claim what is due and enqueue it; returns how many jobs were enqueued."""
    lease = delivery_options(services.settings).lease_s()
    with services.engine.connect() as conn:  # most polls find nothing: read before locking
        if not deliveries_due(conn) and not inbound_due(conn):
            return 0
    with write_transaction(services.engine) as conn:
        deliveries = claim_due_deliveries(conn, lease)
        inbound = claim_due_inbound(conn, INBOUND_LEASE_S)
    count = sum(queueing.enqueue_delivery(services, d) for d in deliveries)
    return count + sum(queueing.enqueue_inbound(services, i) for i in inbound)


class OutboxPump(threading.Thread):
    """Calls `pump_once` every webhook_poll_interval_s when this process wins the turn."""

    def __init__(self, services: Services, owner: str) -> None:
        super().__init__(name="chronoseal-outbox", daemon=True)
        self._services = services
        self._owner = owner
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = max(0.05, self._services.settings.webhook_poll_interval_s)
        while not self._stopped.wait(interval):
            try:
                if self._services.redis.set(turn_key(self._services), self._owner, nx=True,
                                            px=max(1, int(interval * 1000))):
                    pump_once(self._services)
            except redis.RedisError as exc:
                log.warning("outbox: Redis unavailable: %s", exc)
            except Exception:
                log.exception("outbox: poll failed; trying again")

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout)
