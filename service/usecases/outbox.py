"""The outbox: find due webhook deliveries and inbound messages and enqueue one job per row.

Why polling an outbox rather than enqueueing right after each commit: the rows are written in
the transactions that change receipts (deep inside stamping, which must not know RQ); polling
finds them whatever process committed them, also after Redis lost its jobs or a worker died
mid-attempt (claims are leases: a row whose job vanished is due again when its lease passes).
The cost is at most one poll interval (1 s by default) of latency on the "immediate" first
attempt, and one indexed query per interval. Workers poll it (workers.outbox).
"""

from __future__ import annotations

from service.storage.engine import write_transaction
from service.storage.inbound import claim_due_inbound, inbound_due
from service.storage.webhooks import claim_due_deliveries, deliveries_due
from service.usecases import queueing
from service.usecases.deliver import DeliveryOptions
from service.usecases.inbound import INBOUND_LEASE_S
from service.wiring import Services


def pump_once(services: Services) -> int:
    """Claim what is due and enqueue it; returns how many jobs were enqueued."""
    lease = DeliveryOptions.from_settings(services.settings, services.resolver).lease_s()
    with services.engine.connect() as conn:  # most polls find nothing: read before locking
        if not deliveries_due(conn) and not inbound_due(conn):
            return 0
    with write_transaction(services.engine) as conn:
        deliveries = claim_due_deliveries(conn, lease)
        inbound = claim_due_inbound(conn, INBOUND_LEASE_S)
    count = sum(queueing.enqueue_delivery(services, d) for d in deliveries)
    return count + sum(queueing.enqueue_inbound(services, i) for i in inbound)


def turn_key(services: Services) -> str:
    """The Redis key that gives one worker the turn to pump per interval."""
    return f"{queueing.key_prefix(services.settings)}:outbox-turn"
