"""Hash pending images: the use case that works through the hash_pending list.

The API keeps the upload (service.storage.uploads, in the receipt's transaction, with the
receipt's hash_pending flag set) and pokes a coalesced signal; the signal enqueues one
hashing job (workers.jobs.hash_pending_images) per burst through the flag protocol of
usecases.queueing. The job hashes receipts until the work list is empty, each claimed in Redis
first so that several background workers never decode the same image twice. Decoding happens
in the job, never in the request: it costs tens of milliseconds per image and the registration
must answer fast.
Jobs Redis lost are replaced by the sweep (`enqueue_unhashed`).
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from service.errors import ImageDecodeError
from service.evidence.perceptual import registration_hashes_and_picture
from service.evidence.thumbnail import (
    STORED_THUMBNAIL_MEDIA_TYPE,
    THUMBNAIL_MAX_SIDE,
    stored_thumbnail,
)
from service.runtime.priority import normal_priority
from service.storage.engine import write_transaction
from service.storage.perceptual import (
    clear_hash_pending,
    hashes_of,
    hashes_of_image,
    receipts_to_hash,
    store_hashes,
)
from service.storage.receipts import get_receipt
from service.storage.thumbnails import store_thumbnail
from service.storage.uploads import UploadStore
from service.usecases import queueing
from service.wiring import Services

log = logging.getLogger(__name__)

# Receipts read from the work list per query: one query per this many images.
WORK_CHUNK = 50
# A claim outlives the hashing of one image by far (a 50-megapixel image takes about a second);
# a worker killed mid-image leaves the receipt to another job once its claim has expired.
CLAIM_TTL_S = 120
# A kept upload with no receipt this long after it was written is an orphan (its process died
# before the receipt committed); far beyond any commit, short enough not to pile up.
ORPHAN_AGE_S = 3600
# Receipts hashed per write transaction: a sixteenth of the commits, and at most a few seconds
# of hashing lost when a worker dies in between (its claims expire; another job redoes them).
STORE_EVERY = 16
# Backing off while the machine is busy (see hash_pending).
MIN_CPU_SHARE = 0.5
MIN_MEASURED_S = 0.005  # shorter chunks say nothing about the machine
BACKOFF_S = 1.0


def remove_orphan_uploads(services: Services) -> int:
    """Delete kept uploads whose receipt never committed (one slice per sweep)."""
    with services.engine.connect() as conn:
        return services.uploads.remove_orphans(conn, ORPHAN_AGE_S)


def enqueue_unhashed(services: Services) -> int:
    """Enqueue a hashing job when receipts wait for hashing (Redis may have lost theirs)."""
    with services.engine.connect() as conn:
        waiting = receipts_to_hash(conn, 1)
    return int(bool(waiting) and queueing.enqueue_hash_job(services))


@dataclass(frozen=True)
class _Hashed:
    """What hashing one receipt gave: its views (None: already done) and what to drop."""

    receipt_id: str
    views: list[tuple[int, int, int]] | None
    drop_sha256: str | None  # the kept upload to drop once the views are stored
    thumbnail: tuple[str, bytes] | None = None  # (image_sha256, WebP) stored with the views


def _compute(engine: Engine, uploads: UploadStore, receipt_id: str,
             keep_images: bool) -> _Hashed | None:
    with engine.connect() as conn:
        receipt = get_receipt(conn, receipt_id, None)
        if receipt is None:
            return None
        done = receipt.image_size is None or bool(hashes_of(conn, receipt_id))
        known = [] if done else hashes_of_image(conn, receipt.image_sha256)
        data = None if done or known else uploads.load(conn, receipt.image_sha256)
    views: list[tuple[int, int, int]] | None
    small = None
    if done:
        views = None  # nothing to (re)compute
    elif known:
        views = [(h.view, h.phash, h.dhash256) for h in known]
    elif data is None:
        log.warning("no kept image for %s: nothing to hash", receipt_id)
        views = []
    else:
        try:  # one decode gives the hashes and the thumbnail kept after the upload
            found, picture = registration_hashes_and_picture(io.BytesIO(data),
                                                             THUMBNAIL_MAX_SIDE)
        except ImageDecodeError as exc:
            log.info("%s: not hashed (%s)", receipt_id, exc)
            views = []
        else:
            views = [(h.view, h.phash, h.dhash256) for h in found]
            small = (receipt.image_sha256, stored_thumbnail(picture))
    # The upload is dropped whenever this receipt is done with it, unless images are kept:
    # also when the hashes were copied from an earlier receipt of the same bytes (a second
    # upload of them was kept again after the first was dropped) or were there already.
    # Nothing to hash again later when the image gave no hashes: drop it in any case.
    drop = receipt.image_size is not None and (not keep_images or views == [])
    return _Hashed(receipt_id, views, receipt.image_sha256 if drop else None, small)


def _store(engine: Engine, uploads: UploadStore, hashed: list[_Hashed]) -> None:
    """Store the views of several receipts in one transaction, then drop their uploads.

    One commit for many receipts: each commit holds the write lock every API process needs.
    Writes never run at idle priority (runtime.priority). Each image's thumbnail is written
    with its hashes (kept after the upload). Uploads are dropped only after the
    hashes are committed, so a receipt of the same bytes finds one or the other.
    """
    if not hashed:
        return
    with normal_priority(), write_transaction(engine) as conn:
        for item in hashed:
            if item.views is None:
                clear_hash_pending(conn, item.receipt_id)
            else:
                store_hashes(conn, item.receipt_id, item.views)
            if item.thumbnail is not None:
                store_thumbnail(conn, item.thumbnail[0], STORED_THUMBNAIL_MEDIA_TYPE,
                                item.thumbnail[1])
    drops = sorted({item.drop_sha256 for item in hashed if item.drop_sha256})
    if drops:
        with normal_priority(), write_transaction(engine) as conn:
            for sha256 in drops:
                uploads.drop(conn, sha256)


def hash_receipt_image(engine: Engine, uploads: UploadStore, receipt_id: str, *,
                       keep_images: bool) -> int:
    """Compute and store the receipt's perceptual hashes; returns how many views were stored.

    Idempotent, and always takes the receipt off the work list: a receipt with hashes is left
    alone, and a receipt whose bytes another receipt already had hashed copies those (same
    bytes, same hashes: the upload may be gone by then).
    """
    item = _compute(engine, uploads, receipt_id, keep_images)
    if item is None:
        return 0
    _store(engine, uploads, [item])
    return len(item.views or [])


def hash_pending(services: Services) -> int:
    """Hash every receipt on the work list that no other worker claimed; how many were hashed.

    Results are stored STORE_EVERY receipts at a time (one transaction each). The worker backs
    off while the machine is busy: under SCHED_IDLE it gets only spare CPU, and a chunk that got
    less than MIN_CPU_SHARE of its wall time means the API is using the cores. Hashing then
    does one image per BACKOFF_S, because even spare-time hashing evicts the API's caches
    (bench/e2e.py: uploads were 20% slower with hashing beside them); when the share comes
    back, full chunks resume. Workers on a host of their own never back off.
    """
    done = 0
    prefix = queueing.key_prefix(services.settings)
    engine, uploads = services.engine, services.uploads
    size = STORE_EVERY
    while True:
        with engine.connect() as conn:
            waiting = receipts_to_hash(conn, WORK_CHUNK)
        mine: list[str] = []
        for receipt_id in waiting:
            if len(mine) == size:
                break
            if services.redis.set(f"{prefix}:hash-claim:{receipt_id}", b"1", nx=True,
                                  ex=CLAIM_TTL_S):
                mine.append(receipt_id)
        if not mine:
            return done  # nothing left, or everything left is another worker's
        wall, cpu = time.perf_counter(), time.thread_time()
        results = [_compute(engine, uploads, receipt_id, services.settings.keep_images)
                   for receipt_id in mine]
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        _store(engine, uploads, [r for r in results if r is not None])
        done += len(results)
        if wall > MIN_MEASURED_S and cpu < MIN_CPU_SHARE * wall:
            size = 1
            time.sleep(BACKOFF_S)
        else:
            size = STORE_EVERY
