"""Putting stamping work on Redis: cheap, deduplicated, and never fatal to the caller.

Protocol (the database stays the source of truth; Redis only says "look at the database"):

1. After committing a receipt the API calls `enqueue_stamping`: `SET <prefix>:stamp-flag NX PX`.
   Only the caller that set the flag enqueues a `stamp_batch` job, so a burst of N uploads makes
   about one job per batch, not N jobs.
2. The job DELETES the flag before it claims receipts. A receipt committed before the flag was
   deleted is claimed by that job (its claim comes later); one committed after it finds no flag
   and enqueues its own job. Either way every receipt is covered by a job that claims later.
3. The flag expires after STAMP_FLAG_TTL_MS, so a job lost with its flag still set (Redis
   restarted, worker killed before it started) blocks new jobs only briefly; the sweeper finds
   whatever Redis lost for longer.

Perceptual hashing uses the same protocol with its own flag and job (`enqueue_hashing`, the
job `service.usecases.hashing.hash_pending_images` on the background queue); its work list is the
receipts' hash_pending flag in the database.

Keys are namespaced by the queue name, so several deployments (or tests) can share one Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError

from service.settings import Settings
from service.wiring import Services

log = logging.getLogger(__name__)

# A job is normally dequeued within milliseconds; if it is lost with the flag set, new receipts
# wait at most this long before one of them enqueues again (the sweeper is the slower net).
STAMP_FLAG_TTL_MS = 5_000
# Results live in the database; RQ keeps none (0 = delete the job as soon as it succeeds).
RESULT_TTL_S = 0
# Failed jobs stay a day for `rq info`/debugging; the sweeper re-does their work anyway.
FAILURE_TTL_S = 24 * 3600
# A failed retry job keeps its id (and so blocks re-enqueueing that retry) only this long.
RETRY_FAILURE_TTL_S = 300
# A stamp job waits up to batch_max_wait_ms and then for every TSA (read timeouts of 30 s by
# default, several TSAs in parallel); 10 minutes is far beyond that and still frees a stuck worker.
JOB_TIMEOUT_S = 600
# Job functions by dotted name: enqueuing must not import the worker side (TSA client etc.).
STAMP_JOB = "workers.jobs.stamp_batch"
HASH_JOB = "workers.jobs.hash_pending_images"
# Hashing a 50-megapixel image takes about a second; a job hashes until the work list is empty,
# so its timeout only frees a stuck worker.
HASH_JOB_TIMEOUT_S = 3600
RETRY_JOB = "workers.jobs.retry_tsa"
SWEEP_JOB = "workers.jobs.sweep"
DELIVER_JOB = "workers.jobs.deliver_webhook"
INBOUND_JOB = "workers.jobs.register_inbound"
# A webhook attempt is bounded by its own timeouts (seconds); this only frees a stuck worker.
WEBHOOK_JOB_TIMEOUT_S = 120
BACKGROUND_SUFFIX = "-background"
# RQ workers' worker_ttl (workers/bootstrap.py). RQ blocks on Redis for worker_ttl - 15 s
# between jobs and heartbeats before each wait and each job, so a live worker's heartbeat is
# younger than this unless one job outlasts it (a stamp job waits on TSAs for seconds); a minute
# keeps dead workers' entries short-lived in `rq info` and lets a SIGTERM'd idle worker notice
# quickly. /readyz counts a worker as live while its heartbeat is younger than this.
WORKER_TTL_S = 60


def key_prefix(settings: Settings) -> str:
    """Namespace of Chronoseal's own Redis keys (RQ's keys are namespaced by the queue name)."""
    return f"chronoseal:{settings.queue_name}"


def stamp_flag_key(settings: Settings) -> str:
    """The "a stamp job is queued" flag of step 1 above."""
    return f"{key_prefix(settings)}:stamp-flag"


def hash_flag_key(settings: Settings) -> str:
    """The "a hashing job is queued" flag (same protocol as stamp_flag_key)."""
    return f"{key_prefix(settings)}:hash-flag"


def queue_for(services: Services, connection: redis.Redis | None = None) -> Queue:
    """The RQ queue named in settings, on `connection` or the shared client."""
    return Queue(services.settings.queue_name, connection=connection or services.redis)


def background_queue_name(settings: Settings) -> str:
    """Work that may wait (perceptual hashing): workers take it only when stamping is idle.

    RQ dequeues from a worker's queues in order, so a burst of uploads, each with a hashing
    job of several milliseconds of CPU, never delays the stamping of their receipts.
    """
    return f"{settings.queue_name}{BACKGROUND_SUFFIX}"


QUEUE_CHOICES = ("all", "stamping", "background")


def worker_queue_names(settings: Settings, which: str = "all") -> list[str]:
    """The queues a worker listens on, in priority order: stamping first, then background.

    `which` narrows it: "stamping" workers never pick up hashing, and a "background" worker
    (niced by `chronoseal up`) does the CPU-heavy hashing only with the cores the API and
    the stamping workers leave idle.
    """
    names = {"stamping": [settings.queue_name], "background": [background_queue_name(settings)]}
    return names.get(which, [settings.queue_name, background_queue_name(settings)])


def background_queue_for(services: Services, connection: redis.Redis | None = None) -> Queue:
    """The background queue (see background_queue_name)."""
    return Queue(background_queue_name(services.settings),
                 connection=connection or services.redis)


def enqueue_stamping(services: Services) -> None:
    """Make sure a stamp job will look at receipts committed so far; never raises on Redis errors.

    Called after receipt commits (by the API through its coalesced signal). When Redis is down
    the receipt simply waits for the sweeper (stale_after_s), so the upload still succeeds.
    """
    _enqueue_flagged(services, stamp_flag_key(services.settings),
                     lambda: _enqueue_stamp_job(services), "stamping")


def enqueue_hashing(services: Services) -> None:
    """Make sure a hashing job will look at the hash_pending receipts committed so far."""
    _enqueue_flagged(services, hash_flag_key(services.settings),
                     lambda: _enqueue_hash_job(services), "hashing")


def _enqueue_flagged(services: Services, flag: str, enqueue: Callable[[], None],
                     what: str) -> None:
    """Steps 1 and 3 of the protocol above, for the job `enqueue` puts on a queue."""
    try:
        if not services.redis.set(flag, b"1", nx=True, px=STAMP_FLAG_TTL_MS):
            return  # a queued job will look: it deletes the flag before it reads its work list
        try:
            enqueue()
        except Exception:
            services.redis.delete(flag)  # let the next caller try again
            raise
    except redis.RedisError as exc:
        log.warning("could not enqueue %s (the sweeper will): %s", what, exc)


def enqueue_hash_job(services: Services) -> bool:
    """Enqueue a hashing job regardless of the flag (the sweeper); False if Redis failed."""
    return _enqueue_or_log(lambda: _enqueue_hash_job(services), "a hashing job")


def _enqueue_or_log(enqueue: Callable[[], None], what: str) -> bool:
    """Run `enqueue`; False (logged) when Redis failed."""
    try:
        enqueue()
        return True
    except redis.RedisError as exc:
        log.warning("could not enqueue %s: %s", what, exc)
        return False


def clear_hash_flag(services: Services) -> None:
    """Step 2 of the protocol, for the hashing job."""
    services.redis.delete(hash_flag_key(services.settings))


def _enqueue_hash_job(services: Services) -> None:
    background_queue_for(services).enqueue(
        HASH_JOB, job_timeout=HASH_JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
    )


def enqueue_stamp_job(services: Services) -> bool:
    """Enqueue a stamp job regardless of the flag (sweeper, follow-ups); False if Redis failed."""
    return _enqueue_or_log(lambda: _enqueue_stamp_job(services), "a stamp job")


def clear_stamp_flag(services: Services) -> None:
    """Step 2 of the protocol: called by the job before it claims receipts."""
    services.redis.delete(stamp_flag_key(services.settings))


def enqueue_tsa_retry(services: Services, batch_id: str, tsa: str) -> bool:
    """Enqueue one retry of `tsa` for `batch_id`, once: the job id deduplicates repeated sweeps."""
    try:
        queue_for(services).enqueue(
            RETRY_JOB, batch_id, tsa,
            job_id=f"retry-{batch_id}-{tsa}", unique=True,
            job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S, failure_ttl=RETRY_FAILURE_TTL_S,
        )
        return True
    except DuplicateJobError:
        return False  # already queued or running
    except redis.RedisError as exc:
        log.warning("could not enqueue a retry of %s for %s: %s", tsa, batch_id, exc)
        return False


def _enqueue_stamp_job(services: Services) -> None:
    queue_for(services).enqueue(
        STAMP_JOB, job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S, failure_ttl=FAILURE_TTL_S,
    )


def _enqueue_once(services: Services, function: str, object_id: str) -> bool:
    """Enqueue `function(object_id)` unless a job for that id is queued or running."""
    try:
        queue_for(services).enqueue(
            function, object_id, job_id=f"{function.rsplit('.', 1)[1]}-{object_id}",
            unique=True, job_timeout=WEBHOOK_JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S,
            failure_ttl=RETRY_FAILURE_TTL_S,
        )
        return True
    except DuplicateJobError:
        return False
    except redis.RedisError as exc:
        log.warning("could not enqueue %s(%s): %s", function, object_id, exc)
        return False


def enqueue_delivery(services: Services, delivery_id: str) -> bool:
    """One attempt at a webhook delivery (the database says whether it is still due)."""
    return _enqueue_once(services, DELIVER_JOB, delivery_id)


def enqueue_inbound(services: Services, inbound_id: str) -> bool:
    """Register the image of an accepted inbound message."""
    return _enqueue_once(services, INBOUND_JOB, inbound_id)
