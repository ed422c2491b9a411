"""Perceptual hashing of registered images: the RQ job and how the API enqueues it.

The API keeps the upload (storage.perceptual.keep_upload, in the receipt's transaction) and
enqueues `hash_image(receipt_id)`; the job decodes the image, stores its hashes and drops the
upload unless settings.keep_images. Decoding happens here, never in the request: it costs tens
of milliseconds per image and the registration must answer fast. Lost jobs are found again by
`enqueue_unhashed` (the kept upload without hashes is the work list).
"""

from __future__ import annotations

import io
import logging

import redis
from rq.exceptions import DuplicateJobError
from sqlalchemy import Engine

from service.errors import ImageDecodeError
from service.evidence.perceptual import registration_hashes
from service.storage.perceptual import (
    drop_upload,
    hashes_of,
    hashes_of_image,
    load_upload,
    store_hashes,
    unhashed_uploads,
)
from service.storage.receipts import get_receipt
from service.wiring import Services
from workers import queueing

log = logging.getLogger(__name__)

HASH_JOB = "workers.perceptual.hash_image"
# Decoding a 50-megapixel image takes about a second; a minute frees a stuck worker.
JOB_TIMEOUT_S = 60
FAILURE_TTL_S = 24 * 3600  # failed jobs stay a day for `rq info`; the sweep re-does them
SWEEP_BATCH = 500  # receipts re-enqueued per sweep: bounds one sweep's Redis traffic


def enqueue_hashing(services: Services, receipt_id: str) -> bool:
    """Queue the hashing of one receipt's image, once per receipt; False when Redis failed."""
    try:
        queueing.background_queue_for(services).enqueue(
            HASH_JOB, receipt_id, job_id=f"phash-{receipt_id}", unique=True,
            job_timeout=JOB_TIMEOUT_S, result_ttl=0, failure_ttl=FAILURE_TTL_S,
        )
        return True
    except DuplicateJobError:
        return True  # already queued
    except redis.RedisError as exc:
        log.warning("could not enqueue hashing of %s: %s", receipt_id, exc)
        return False


def enqueue_unhashed(services: Services) -> int:
    """Re-enqueue receipts whose image is kept but not hashed (Redis lost their job)."""
    with services.engine.connect() as conn:
        ids = unhashed_uploads(conn, SWEEP_BATCH)
    return sum(enqueue_hashing(services, receipt_id) for receipt_id in ids)


def hash_receipt_image(engine: Engine, receipt_id: str, *, keep_images: bool) -> int:
    """Compute and store the receipt's perceptual hashes; returns how many views were stored.

    Idempotent: a receipt with hashes is left alone, and a receipt whose bytes another receipt
    already had hashed copies those (same bytes, same hashes: the upload may be gone by then).
    """
    with engine.connect() as conn:
        receipt = get_receipt(conn, receipt_id, None)
        if receipt is None or receipt.image_size is None or hashes_of(conn, receipt_id):
            return 0
        known = hashes_of_image(conn, receipt.image_sha256)
        data = None if known else load_upload(conn, receipt.image_sha256)
    if known:
        views = [(h.view, h.phash, h.dhash256) for h in known]
    elif data is None:
        log.warning("no kept image for %s: nothing to hash", receipt_id)
        return 0
    else:
        try:
            views = [(h.view, h.phash, h.dhash256)
                     for h in registration_hashes(io.BytesIO(data))]
        except ImageDecodeError as exc:
            log.info("%s: not hashed (%s)", receipt_id, exc)
            views = []
    with engine.begin() as conn:
        store_hashes(conn, receipt_id, views)
        # Nothing to hash again later when the image gave no hashes: drop it in any case.
        if not keep_images or not views:
            drop_upload(conn, receipt.image_sha256)
    return len(views)


def hash_image(receipt_id: str) -> int:
    """RQ job: hash one receipt's image (see hash_receipt_image)."""
    from workers.bootstrap import current  # the worker side only: TSA clients and the stamper

    services = current().services
    return hash_receipt_image(services.engine, receipt_id,
                              keep_images=services.settings.keep_images)
