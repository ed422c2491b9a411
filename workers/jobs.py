"""RQ job functions: thin, idempotent, taking ids only; every result is written to the database.

Enqueued by dotted name (workers.queueing) so the API never imports this module.
"""

from __future__ import annotations

import logging

from service.webhooks.delivery import deliver
from service.webhooks.inbound import register
from workers import queueing
from workers.bootstrap import current
from workers.outbox import delivery_options, inbound_options

log = logging.getLogger(__name__)


def stamp_batch() -> str | None:
    """Stamp the next batch of pending receipts, and take over one abandoned batch if any.

    Clears the enqueue flag before claiming (see workers.queueing): any receipt committed
    before this point is claimable now or later by this job, any later one enqueued its own.
    Returns the id of the new batch (for logs; RQ keeps no result).
    """
    context = current()
    services, stamper = context.services, context.stamper
    queueing.clear_stamp_flag(services)
    batch = stamper.claim_next()
    if batch is not None:
        if len(batch.leaves) >= stamper.options.max_size:
            # More may be waiting: let another worker claim them while we wait on TSAs.
            queueing.enqueue_stamping(services)
        stamper.stamp(batch)
    abandoned = stamper.claim_expired()
    if abandoned is not None:
        queueing.enqueue_stamp_job(services)  # there may be more; keep them moving in parallel
        log.info("taking over batch %s (lease expired)", abandoned.id)
        stamper.stamp(abandoned)
    return batch.id if batch is not None else None


def retry_tsa(batch_id: str, tsa: str) -> bool:
    """Ask one TSA again for a batch's stored root, if that attempt is still due."""
    return current().stamper.retry(batch_id, tsa)


def sweep() -> str:
    """One sweep (see service.stamping.sweep), e.g. from `rq` or a scheduler."""
    return str(current().sweep())


def deliver_webhook(delivery_id: str) -> str:
    """One attempt at a webhook delivery; the outcome and next attempt go to the database."""
    services = current().services
    return deliver(services.engine, delivery_id, delivery_options(services.settings))


def register_inbound(inbound_id: str) -> str | None:
    """Create the receipt of an accepted post.published message, then enqueue stamping."""
    services = current().services
    receipt_id = register(services.engine, inbound_id, inbound_options(services))
    if receipt_id is not None:
        queueing.enqueue_stamping(services)
        queueing.enqueue_hashing(services)
    return receipt_id
