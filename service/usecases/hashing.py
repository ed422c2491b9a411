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
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

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
    ImageToHash,
    clear_hash_pending,
    hashed_receipts,
    hashes_of_images,
    images_to_hash,
    receipts_to_hash,
    store_many_hashes,
)
from service.storage.thumbnails import store_thumbnails
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
    thumbnail: tuple[str, bytes] | None = None  # (image_sha256, JPEG) stored with the views


def _compute_chunk(engine: Engine, uploads: UploadStore, receipt_ids: Sequence[str],
                   keep_images: bool) -> list[_Hashed]:
    """Hash the receipts' images (those that exist); what to store for each, in order.

    What is known already is read for the whole chunk in three queries; each image is then
    loaded and decoded on its own, so memory holds one image at a time.
    """
    with engine.connect() as conn:
        images = images_to_hash(conn, receipt_ids)
        with_image = [image for image in images if image.image_size is not None]
        done = hashed_receipts(conn, [image.receipt_id for image in with_image])
        known = hashes_of_images(conn, sorted({image.image_sha256 for image in with_image
                                               if image.receipt_id not in done}))
    copies = {digest: [(h.view, h.phash, h.dhash256) for h in views]
              for digest, views in known.items()}
    results = []
    for image in images:
        views: list[tuple[int, int, int]] | None
        small = None
        if image.image_size is None or image.receipt_id in done:
            views = None  # nothing to (re)compute
        elif image.image_sha256 in copies:  # same bytes, same hashes (the upload may be gone)
            views = copies[image.image_sha256]
        else:
            views, small = _decode(engine, uploads, image)
            copies[image.image_sha256] = views  # the same bytes again in this chunk
        # The upload is dropped whenever this receipt is done with it, unless images are kept:
        # also when the hashes were copied from an earlier receipt of the same bytes (a second
        # upload of them was kept again after the first was dropped) or were there already.
        # Nothing to hash again later when the image gave no hashes: drop it in any case.
        drop = image.image_size is not None and (not keep_images or views == [])
        results.append(_Hashed(image.receipt_id, views,
                               image.image_sha256 if drop else None, small))
    return results


def _decode(engine: Engine, uploads: UploadStore, image: ImageToHash
            ) -> tuple[list[tuple[int, int, int]], tuple[str, bytes] | None]:
    """The views of one kept upload, and its stored thumbnail; no views when it cannot be."""
    with engine.connect() as conn:
        data = uploads.load(conn, image.image_sha256)
    if data is None:
        log.warning("no kept image for %s: nothing to hash", image.receipt_id)
        return [], None
    try:  # one decode gives the hashes and the thumbnail kept after the upload
        found, picture = registration_hashes_and_picture(io.BytesIO(data), THUMBNAIL_MAX_SIDE)
    except ImageDecodeError as exc:
        log.info("%s: not hashed (%s)", image.receipt_id, exc)
        return [], None
    return ([(h.view, h.phash, h.dhash256) for h in found],
            (image.image_sha256, stored_thumbnail(picture)))


def _store(engine: Engine, uploads: UploadStore, hashed: list[_Hashed]) -> None:
    """Store the views of several receipts in one transaction, and drop their uploads.

    One commit for many receipts: each commit holds the write lock every API process needs.
    Writes never run at idle priority (runtime.priority). Each image's thumbnail is written
    with its hashes (kept after the upload). A receipt of the same bytes must find the hashes
    or the upload: uploads kept in the database go in the same transaction, files only once
    it has committed.
    """
    if not hashed:
        return
    drops = sorted({item.drop_sha256 for item in hashed if item.drop_sha256})

    def drop_uploads(conn: Connection) -> None:
        for sha256 in drops:
            uploads.drop(conn, sha256)

    with normal_priority(), write_transaction(engine) as conn:
        clear_hash_pending(conn, *(item.receipt_id for item in hashed if item.views is None))
        store_many_hashes(conn, {item.receipt_id: item.views for item in hashed
                                 if item.views is not None})
        store_thumbnails(conn, STORED_THUMBNAIL_MEDIA_TYPE,
                         dict(item.thumbnail for item in hashed if item.thumbnail is not None))
        if uploads.transactional:
            drop_uploads(conn)
    if not uploads.transactional and drops:
        with engine.connect() as conn:  # files: no statement runs, so no transaction either
            drop_uploads(conn)


def hash_receipt_image(engine: Engine, uploads: UploadStore, receipt_id: str, *,
                       keep_images: bool) -> int:
    """Compute and store the receipt's perceptual hashes; returns how many views were stored.

    Idempotent, and always takes the receipt off the work list: a receipt with hashes is left
    alone, and a receipt whose bytes another receipt already had hashed copies those (same
    bytes, same hashes: the upload may be gone by then).
    """
    items = _compute_chunk(engine, uploads, [receipt_id], keep_images)
    _store(engine, uploads, items)
    return len(items[0].views or []) if items else 0


def _claim(services: Services, candidates: Sequence[str], size: int) -> list[str]:
    """Claim up to `size` of `candidates` in Redis (SET NX with a TTL), a pipelined round trip
    per attempt; others' claims are skipped. Only as many are asked as are still wanted, so
    no claim is left unused to expire."""
    prefix = queueing.key_prefix(services.settings)
    mine: list[str] = []
    rest = list(candidates)
    while rest and len(mine) < size:
        asked, rest = rest[:size - len(mine)], rest[size - len(mine):]
        pipe = services.redis.pipeline(transaction=False)
        for receipt_id in asked:
            pipe.set(f"{prefix}:hash-claim:{receipt_id}", b"1", nx=True, ex=CLAIM_TTL_S)
        mine += [receipt_id for receipt_id, got in zip(asked, pipe.execute(), strict=True)
                 if got]
    return mine


def hash_pending(services: Services) -> int:
    """Hash every receipt on the work list that no other worker claimed; how many were hashed.

    Results are stored STORE_EVERY receipts at a time (one transaction each). The worker backs
    off while the machine is busy: under SCHED_IDLE it gets only spare CPU, and a chunk that got
    less than MIN_CPU_SHARE of its wall time means the API is using the cores. Hashing then
    does one image per BACKOFF_S, because even spare-time hashing evicts the API's caches
    (bench/e2e.py: uploads were 20% slower with hashing beside them); when the share comes
    back, full chunks resume. Workers on a host of their own never back off. While more waits
    than one chunk and the machine has room, another background worker is asked to join.
    """
    done = 0
    engine, uploads = services.engine, services.uploads
    busy = False  # the last chunk got too little CPU: one image per BACKOFF_S
    while True:
        with engine.connect() as conn:
            waiting = receipts_to_hash(conn, WORK_CHUNK)
        mine = _claim(services, waiting, 1 if busy else STORE_EVERY)
        if not mine:
            return done  # nothing left, or everything left is another worker's
        if len(waiting) > len(mine) and not busy:
            # More than this chunk waits and the machine has room: ask another background
            # worker to join (the flag keeps at most one such job queued; the claims keep
            # the workers off each other's images).
            queueing.enqueue_hashing(services)
        wall, cpu = time.perf_counter(), time.thread_time()
        results = _compute_chunk(engine, uploads, mine, services.settings.keep_images)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        _store(engine, uploads, results)
        done += len(results)
        busy = wall > MIN_MEASURED_S and cpu < MIN_CPU_SHARE * wall
        if busy:
            time.sleep(BACKOFF_S)
