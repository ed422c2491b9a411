"""Receipts: idempotent registration, scoped reads, and keyset-paginated listing.

A receipt is written `pending` before any work is enqueued (the database is the source of
truth); batches.py moves it to `stamped`, sweep.py to `failed`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, bindparam, select
from sqlalchemy.exc import IntegrityError

from service.errors import MalformedInputError
from service.storage.errors import IdempotencyConflictError
from service.storage.ids import new_receipt_id
from service.storage.tables import RECEIPT_STATUSES, batches, receipts, utcnow

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200  # each row carries its manifest (a few KiB): bounds one response's size


@dataclass(frozen=True)
class Receipt:
    """A receipt row, with its batch's root and size once it has been put in a tree."""

    id: str
    api_key_id: str
    status: str
    image_sha256: str
    image_size: int | None
    media_type: str | None
    manifest_jcs: bytes
    manifest_digest: str
    external_id: str | None
    callback_url: str | None
    warnings: list[Any]
    public: bool
    idempotency_key: str | None
    request_fingerprint: str | None
    created_at: datetime
    enqueued_at: datetime | None
    stamped_at: datetime | None
    failure: str | None
    last_error: str | None
    batch_id: str | None
    leaf_index: int | None
    proof: list[str] | None  # audit path, hex node hashes from the leaf up
    root: str | None
    tree_size: int | None
    head_jcs: bytes | None = None  # the batch's batch-head.json (None: stamped before heads)
    hash_pending: bool = False  # its image waits for perceptual hashing
    session: str | None = None  # the working session it was registered in (usecases.lineage)
    disclosure_json: bytes | None = None  # a private record's openings, kept only when asked
    image_name: str | None = None  # the file name sent with the upload
    replayed: bool = False  # True when insert_receipt returned an earlier identical request


def _receipt(row: RowMapping, replayed: bool = False) -> Receipt:
    values = dict(row)
    values["manifest_jcs"] = bytes(values["manifest_jcs"])
    values["warnings"] = json.loads(values["warnings"])
    values["proof"] = json.loads(values["proof"]) if values["proof"] is not None else None
    values["public"] = bool(values["public"])
    values["hash_pending"] = bool(values["hash_pending"])
    head = values.get("head_jcs")
    values["head_jcs"] = bytes(head) if head is not None else None
    opened = values.get("disclosure_json")
    values["disclosure_json"] = bytes(opened) if opened is not None else None
    return Receipt(**values, replayed=replayed)


def _select() -> Select[Any]:
    return select(receipts, batches.c.root, batches.c.tree_size, batches.c.head_jcs).select_from(
        receipts.outerjoin(batches, receipts.c.batch_id == batches.c.id)
    )


def get_receipt(conn: Connection, receipt_id: str, api_key_id: str | None) -> Receipt | None:
    """The receipt if it belongs to `api_key_id`; None for another key's receipt or none at all.

    `api_key_id=None` reads without scoping: for workers and for receipts marked public.
    """
    query = _select().where(receipts.c.id == receipt_id)
    if api_key_id is not None:
        query = query.where(receipts.c.api_key_id == api_key_id)
    row = conn.execute(query).mappings().first()
    return _receipt(row) if row else None


@dataclass(frozen=True)
class EarlierReceipt:
    """A key's earlier registration of the same bytes: its id and when it was made."""

    id: str
    created_at: datetime
    status: str


# A prepared statement reused for every upload (the upload path runs it once per request).
_EARLIER = (select(receipts.c.id, receipts.c.created_at, receipts.c.status)
            .where(receipts.c.image_sha256 == bindparam("sha"),
                   receipts.c.api_key_id == bindparam("key"),
                   receipts.c.id != bindparam("exclude"))
            .order_by(receipts.c.id).limit(bindparam("limit")))


def earlier_receipts(conn: Connection, api_key_id: str, image_sha256: str, *, exclude: str,
                     limit: int) -> list[EarlierReceipt]:
    """The key's oldest `limit` receipts of these bytes other than `exclude` (receipts.image_sha256
    is indexed: one index range per upload)."""
    rows = conn.execute(_EARLIER, {"sha": image_sha256, "key": api_key_id, "exclude": exclude,
                                   "limit": limit})
    return [EarlierReceipt(*row) for row in rows]


def receipt_by_idempotency_key(conn: Connection, api_key_id: str, key: str) -> Receipt | None:
    """The key's receipt registered under Idempotency-Key `key` (`replayed` set), if any."""
    query = _select().where(receipts.c.api_key_id == api_key_id, receipts.c.idempotency_key == key)
    row = conn.execute(query).mappings().first()
    return _receipt(row, replayed=True) if row else None


def _replay(existing: Receipt, fingerprint: str | None) -> Receipt:
    if existing.request_fingerprint != fingerprint:
        assert existing.idempotency_key is not None
        raise IdempotencyConflictError(existing.api_key_id, existing.idempotency_key, existing.id)
    return existing


def insert_receipt(
    conn: Connection,
    *,
    api_key_id: str,
    image_sha256: str,
    manifest_jcs: bytes,
    manifest_digest: str,
    image_size: int | None = None,
    media_type: str | None = None,
    external_id: str | None = None,
    callback_url: str | None = None,
    warnings: Sequence[Any] = (),
    public: bool = False,
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
    receipt_id: str | None = None,
    created_at: datetime | None = None,
    hash_pending: bool = False,
    session: str | None = None,
    disclosure_json: bytes | None = None,
    image_name: str | None = None,
) -> Receipt:
    """Insert a pending receipt; with an idempotency key, a repeat returns the first receipt.

    `hash_pending` marks an image whose upload the caller keeps for perceptual hashing.
    The repeat must carry the same `request_fingerprint` (a hash of the request), otherwise
    IdempotencyConflictError. Concurrent first requests are settled by the unique constraint
    inside a savepoint, so the caller's transaction survives. On SQLite run this inside
    `write_transaction(engine)` so the lookup and the insert see the same snapshot.
    """
    if idempotency_key is not None:
        existing = receipt_by_idempotency_key(conn, api_key_id, idempotency_key)
        if existing is not None:
            return _replay(existing, request_fingerprint)
    # Returned as stored: UTC (a naive created_at is refused by the column type below).
    now = created_at.astimezone(UTC) if created_at and created_at.tzinfo else created_at or utcnow()
    receipt = Receipt(
        id=receipt_id or new_receipt_id(),
        api_key_id=api_key_id,
        status="pending",
        image_sha256=image_sha256,
        image_size=image_size,
        media_type=media_type,
        manifest_jcs=bytes(manifest_jcs),
        manifest_digest=manifest_digest,
        external_id=external_id,
        callback_url=callback_url,
        warnings=list(warnings),
        public=public,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        created_at=now,
        enqueued_at=now,  # the sweeper measures staleness from here; never NULL
        stamped_at=None, failure=None, last_error=None, batch_id=None, leaf_index=None,
        proof=None, root=None, tree_size=None, hash_pending=hash_pending,
        session=session, disclosure_json=disclosure_json, image_name=image_name,
    )
    # The row is exactly the receipt returned: no read-back after the insert.
    values = {c.name: getattr(receipt, c.name) for c in receipts.columns}
    values["warnings"] = json.dumps(receipt.warnings)
    # Parameters passed to a plain insert(): SQLAlchemy reuses one compiled statement instead
    # of building and cache-keying a VALUES clause per request.
    if idempotency_key is None:
        conn.execute(receipts.insert(), values)
    else:
        try:
            with conn.begin_nested():
                conn.execute(receipts.insert(), values)
        except IntegrityError:
            existing = receipt_by_idempotency_key(conn, api_key_id, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, request_fingerprint)
    return receipt


def list_receipts(
    conn: Connection,
    api_key_id: str,
    *,
    status: str | None = None,
    external_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> tuple[list[Receipt], str | None]:
    """A page of the key's receipts, newest first, and the cursor of the next page (or None).

    Keyset pagination on the time-sortable id: stable while new receipts arrive, and each page
    is an index range scan however deep the client pages. The cursor is the last id returned.
    """
    if status is not None and status not in RECEIPT_STATUSES:
        raise MalformedInputError(f"unknown status {status!r}")
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = _select().where(receipts.c.api_key_id == api_key_id)
    if status is not None:
        query = query.where(receipts.c.status == status)
    if external_id is not None:
        query = query.where(receipts.c.external_id == external_id)
    if cursor is not None:
        query = query.where(receipts.c.id < cursor)
    rows = conn.execute(query.order_by(receipts.c.id.desc()).limit(limit + 1)).mappings().all()
    page = [_receipt(row) for row in rows[:limit]]
    next_cursor = page[-1].id if len(rows) > limit else None
    return page, next_cursor


def session_receipts(conn: Connection, api_key_id: str, session: str, *, limit: int,
                     cursor: str | None = None) -> tuple[list[Receipt], str | None]:
    """A page of the key's receipts in `session`, oldest first (registration order), and the
    cursor of the next page (the last id returned) or None; one range of the session index."""
    query = _select().where(receipts.c.api_key_id == api_key_id, receipts.c.session == session)
    if cursor is not None:
        query = query.where(receipts.c.id > cursor)
    rows = conn.execute(query.order_by(receipts.c.id).limit(limit + 1)).mappings().all()
    page = [_receipt(row) for row in rows[:limit]]
    return page, page[-1].id if len(rows) > limit else None


def first_stamped_of_image(conn: Connection, api_key_id: str, image_sha256: str
                           ) -> Receipt | None:
    """The key's oldest stamped receipt of these bytes (a parent named by image digest)."""
    query = _select().where(receipts.c.api_key_id == api_key_id,
                            receipts.c.image_sha256 == image_sha256,
                            receipts.c.status == "stamped")
    row = conn.execute(query.order_by(receipts.c.id).limit(1)).mappings().first()
    return _receipt(row) if row else None
def receipt_states(conn: Connection, api_key_id: str, ids: Sequence[str]) -> dict[str, str]:
    """Status by id of those of `ids` that belong to `api_key_id` (one primary-key range)."""
    if not ids:
        return {}
    query = select(receipts.c.id, receipts.c.status).where(
        receipts.c.api_key_id == api_key_id, receipts.c.id.in_(list(ids)))
    return {row.id: row.status for row in conn.execute(query)}


def receipts_by_ids(conn: Connection, api_key_id: str, ids: Sequence[str]) -> list[Receipt]:
    """The key's receipts among `ids`, in id order."""
    if not ids:
        return []
    query = _select().where(receipts.c.api_key_id == api_key_id, receipts.c.id.in_(list(ids)))
    return [_receipt(row) for row in conn.execute(query.order_by(receipts.c.id)).mappings()]
