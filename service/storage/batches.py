"""Batches: workers claim pending receipts atomically and hold the batch under a lease.

Claiming is the one place where workers race. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets
each worker take different receipts without waiting; on SQLite the claim runs in a BEGIN
IMMEDIATE transaction, so claims are serialised by the database's write lock. Either way a
receipt lands in exactly one batch. A worker that dies loses its lease when `lease_until`
passes; another worker takes the batch over and asks the TSAs again for the same root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, or_, select, update

from service.storage.engine import connection_for, is_sqlite
from service.storage.ids import BATCH_PREFIX, new_id
from service.storage.tables import batches, receipts, utcnow

MAX_BATCH_SIZE = 100_000  # as merkle.MAX_TREE_SIZE: larger trees are refused there anyway


@dataclass(frozen=True)
class Leaf:
    """One receipt's place in the tree: the leaf at `index` hashes `manifest_digest`."""

    index: int
    receipt_id: str
    manifest_digest: str


@dataclass(frozen=True)
class Batch:
    """A batch with its leaves in tree order; `root` is None until a result is stored."""

    id: str
    status: str
    root: str | None
    tree_size: int
    created_at: datetime  # when the batch was closed to new receipts (batch-head closed_at)
    lease_owner: str | None
    lease_until: datetime | None
    completed_at: datetime | None
    leaves: list[Leaf]
    head_jcs: bytes | None = None  # batch-head.json once a result is stored (None: format 1)

    @property
    def manifest_digests(self) -> list[str]:
        """The hex digests to build the Merkle tree from, in leaf order."""
        return [leaf.manifest_digest for leaf in self.leaves]


def _load(conn: Connection, batch_id: str) -> Batch | None:
    row = conn.execute(select(batches).where(batches.c.id == batch_id)).mappings().first()
    if row is None:
        return None
    leaves = conn.execute(
        select(receipts.c.leaf_index, receipts.c.id, receipts.c.manifest_digest)
        .where(receipts.c.batch_id == batch_id)
        .order_by(receipts.c.leaf_index)
    ).all()
    values = dict(row)
    values["head_jcs"] = bytes(values["head_jcs"]) if values["head_jcs"] is not None else None
    return Batch(**values, leaves=[Leaf(index, rid, digest) for index, rid, digest in leaves])


def get_batch(conn: Connection, batch_id: str) -> Batch | None:
    """The batch and its leaves, or None."""
    return _load(conn, batch_id)


def claim_batch(
    bind: Engine | Connection,
    max_size: int,
    owner: str,
    lease_s: float,
    now: datetime | None = None,
) -> Batch | None:
    """Put up to `max_size` of the oldest unbatched pending receipts into a new leased batch.

    Returns None when nothing is pending. Leaf order is id order (ids sort by creation time).
    With an Engine this runs in its own write transaction; with a Connection, in the caller's.
    """
    if not 1 <= max_size <= MAX_BATCH_SIZE:
        raise ValueError(f"max_size must be in 1..{MAX_BATCH_SIZE}, not {max_size}")
    now = now or utcnow()
    with connection_for(bind) as conn:
        query = (
            select(receipts.c.id)
            .where(receipts.c.status == "pending", receipts.c.batch_id.is_(None))
            .order_by(receipts.c.id)
            .limit(max_size)
        )
        if not is_sqlite(conn):
            query = query.with_for_update(skip_locked=True)
        ids = conn.execute(query).scalars().all()
        if not ids:
            return None
        batch_id = new_id(BATCH_PREFIX)
        conn.execute(
            batches.insert().values(
                id=batch_id,
                tree_size=len(ids),
                status="open",
                created_at=now,
                lease_owner=owner,
                lease_until=now + timedelta(seconds=lease_s),
            )
        )
        conn.execute(
            update(receipts)
            .where(receipts.c.id == bindparam("rid"))
            .values(batch_id=batch_id, leaf_index=bindparam("idx")),
            [{"rid": rid, "idx": index} for index, rid in enumerate(ids)],
        )
        batch = _load(conn, batch_id)
    assert batch is not None
    return batch


def _lease_expired(now: datetime) -> ColumnElement[bool]:
    return or_(batches.c.lease_until.is_(None), batches.c.lease_until < now)


def claim_expired_batch(
    bind: Engine | Connection, owner: str, lease_s: float, now: datetime | None = None
) -> Batch | None:
    """Take over the oldest open batch whose lease has expired, or return None.

    The batch keeps its receipts, leaf order and any stored root, so the new owner requests
    tokens over the same root and storing them again is idempotent.
    """
    now = now or utcnow()
    with connection_for(bind) as conn:
        query = (
            select(batches.c.id)
            .where(batches.c.status == "open", _lease_expired(now))
            .order_by(batches.c.created_at, batches.c.id)
            .limit(1)
        )
        if not is_sqlite(conn):
            query = query.with_for_update(skip_locked=True)
        batch_id = conn.execute(query).scalar()
        if batch_id is None:
            return None
        conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
        )
        return _load(conn, batch_id)


def renew_lease(
    bind: Engine | Connection,
    batch_id: str,
    owner: str,
    lease_s: float,
    now: datetime | None = None,
) -> bool:
    """Extend the lease while TSAs are slow; False if the batch was taken over or is done."""
    now = now or utcnow()
    with connection_for(bind) as conn:
        result = conn.execute(
            update(batches)
            .where(
                batches.c.id == batch_id,
                batches.c.status == "open",
                batches.c.lease_owner == owner,
            )
            .values(lease_until=now + timedelta(seconds=lease_s))
        )
        return result.rowcount == 1
