"""RQ job functions: thin, idempotent, taking ids only; each calls one use case.

Enqueued by dotted name (service.usecases.queueing) so the API never imports this module.
Results live in the database; RQ keeps none.
"""

from __future__ import annotations

from service.usecases import queueing
from service.usecases.deliver import DeliveryOptions, deliver
from service.usecases.hashing import hash_pending
from service.usecases.inbound import register_inbound as register_inbound_message
from service.usecases.signals import immediate_signals
from service.usecases.stamp import stamp_next
from service.usecases.sweep import sweep as sweep_once
from workers.bootstrap import current


def stamp_batch() -> str | None:
    """Stamp the next batch of pending receipts (and one abandoned batch); the new batch's id."""
    context = current()
    return stamp_next(context.services, context.stamper)


def retry_tsa(batch_id: str, tsa: str) -> bool:
    """Ask one TSA again for a batch's stored root, if that attempt is still due."""
    return current().stamper.retry(batch_id, tsa)


def sweep() -> str:
    """One sweep (see service.usecases.sweep), e.g. from `rq` or a scheduler."""
    return str(sweep_once(current().services))


def deliver_webhook(delivery_id: str) -> str:
    """One attempt at a webhook delivery; the outcome and next attempt go to the database."""
    services = current().services
    options = DeliveryOptions.from_settings(services.settings, services.resolver,
                                            services.secrets)
    return deliver(services.engine, delivery_id, options)


def register_inbound(inbound_id: str) -> str | None:
    """Create the receipt of an accepted post.published message (stamping is signalled)."""
    services = current().services
    return register_inbound_message(services, inbound_id, immediate_signals(services))


def hash_pending_images() -> int:
    """Clear the hashing flag, then hash the work list (see usecases.hashing.hash_pending)."""
    services = current().services
    queueing.clear_hash_flag(services)
    return hash_pending(services)
