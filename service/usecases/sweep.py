"""The sweep: re-find the work Redis lost or a dead worker left, give up in the end, tidy up.

One sweep: the stamping sweep (usecases.stamping.sweep: overdue receipts failed, stale ones
re-enqueued, due TSA retries enqueued), a hashing job when images wait for perceptual hashes,
one slice of kept uploads whose receipt never committed deleted, and revocation data fetched
again for tokens stored while a CRL server failed (usecases.stamping.revocation); then, once per
renew_interval_s (a Redis turn key across all sweepers), the evidence renewal (usecases.renew),
after the revocation fill so that a first archive timestamp covers whatever data came in.
"""

from __future__ import annotations

import logging

import redis

from service.errors import ChronosealError, ConfigError
from service.usecases import queueing
from service.usecases.hashing import enqueue_unhashed, remove_orphan_uploads
from service.usecases.renew import renew
from service.usecases.stamp import load_enabled_tsas
from service.usecases.stamping import SweepReport
from service.usecases.stamping import sweep as sweep_stamping
from service.usecases.stamping.revocation import fetcher_for, fill_missing
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
    fill_revocation(services)
    renew_if_due(services)  # after the fill: a first archive timestamp covers what it fetched
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


def fill_revocation(services: Services) -> int:
    """Fetch revocation data for tokens whose fetch failed earlier; certificates filled."""
    try:
        tsas = load_enabled_tsas(services.settings)
    except ConfigError as exc:
        log.warning("sweep: revocation data not retried: %s", exc)
        return 0
    fetcher = fetcher_for(services.settings, tsas)
    return fill_missing(services.engine, fetcher)
