"""The sweep: re-find the work Redis lost or a dead worker left, give up in the end, tidy up.

One sweep: the stamping sweep (usecases.stamping.sweep: overdue receipts failed, stale ones
re-enqueued, due TSA retries enqueued), a hashing job when images wait for perceptual hashes,
and one slice of kept uploads whose receipt never committed deleted; once per
renew_interval_s (a Redis turn key across all sweepers), the evidence renewal (usecases.renew).
"""

from __future__ import annotations

import logging

import redis

from service.errors import ChronosealError
from service.usecases import queueing
from service.usecases.hashing import enqueue_unhashed, remove_orphan_uploads
from service.usecases.renew import renew
from service.usecases.stamping import SweepReport
from service.usecases.stamping import sweep as sweep_stamping
from service.wiring import Services

log = logging.getLogger(__name__)


def sweep(services: Services) -> SweepReport:
    """One sweep (idempotent: running two at once costs a duplicate query, not a wrong result)."""
    settings = services.settings
    report = sweep_stamping(
        services.engine,
        stale_after_s=settings.stale_after_s,
        give_up_after_s=settings.give_up_after_s,
        enqueue_stamp=lambda: queueing.enqueue_stamp_job(services),
        enqueue_retry=lambda batch_id, tsa: queueing.enqueue_tsa_retry(services, batch_id, tsa),
    )
    enqueue_unhashed(services)  # hashing jobs Redis lost
    remove_orphan_uploads(services)  # files of receipts that never committed
    renew_if_due(services)
    return report


def renew_turn_key(services: Services) -> str:
    """The Redis key whose holder ran this interval's renewal (it expires on its own)."""
    return f"{queueing.key_prefix(services.settings)}:renew-turn"


def renew_if_due(services: Services) -> bool:
    """Run the renewal if no sweeper did in the last renew_interval_s; True if this one did.

    A failed renewal (TSA down) is logged and tried again at the next turn.
    """
    try:
        interval = services.settings.renew_interval_s
        if not services.redis.set(renew_turn_key(services), "1", nx=True, ex=interval):
            return False
    except redis.RedisError:
        return False  # no turn without Redis; the next sweep tries again
    try:
        renew(services)
    except ChronosealError as exc:
        log.warning("evidence renewal failed: %s", exc)
    return True
