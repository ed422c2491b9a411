"""Register many digests at once (POST /v1/stamps/batch): one transaction, a result per item.

Each item goes through the steps of `register` (callback check, parents, `prepare`,
`insert_prepared`); an item that fails gets its own error and the others are still
registered. All receipts are inserted in one write transaction (one commit, one fsync), and
stamping is signalled once.
Items are idempotent by their own Idempotency-Key, exactly as the single route's header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from service.errors import ChronosealError, IdempotencyConflictError
from service.storage.group_commit import group_commit_for
from service.usecases.disk import disk_full_as_error, ensure_room
from service.usecases.register import (
    Prepared,
    Registered,
    Registration,
    check_callback,
    insert_prepared,
    prepare,
    resolve_lineage,
)
from service.usecases.signals import Signals
from service.wiring import Services

# The bound: a session's renders in one request. Preparing one item takes well under a
# millisecond, so a full batch is about a second of server work and a few MB of JSON.
MAX_BATCH_ITEMS = 1000

Result = Registered | ChronosealError


@dataclass(frozen=True)
class _Ready:
    reg: Registration
    prepared: Prepared
    fingerprint: str | None


def register_batch(services: Services, items: Sequence[Registration | ChronosealError],
                   signals: Signals) -> list[Result]:
    """Register every Registration of `items` (digest-only); errors given stay as they are.

    The result list is in the order of `items`: a Registered (replayed when its key was used
    before, in this batch too), or the item's own error (MetadataError, URLRefusedError,
    IdempotencyConflictError...). DiskFullError fails the whole batch: nothing is stored.
    """
    results: list[Result | None] = [item if isinstance(item, ChronosealError) else None
                                    for item in items]
    if len(items) > MAX_BATCH_ITEMS:
        raise ValueError(f"at most {MAX_BATCH_ITEMS} items")  # the web layer refuses first
    ready: dict[int, _Ready] = {}
    for index, item in enumerate(items):
        if isinstance(item, ChronosealError):
            continue
        if item.image is not None:
            raise ValueError("batch items are digest-only")
        try:
            check_callback(services, item)
            ready[index] = _Ready(item, prepare(item, resolve_lineage(services, item)),
                                  item.fingerprint() if item.idempotency_key else None)
        except ChronosealError as exc:
            results[index] = exc
    if ready:
        ensure_room(services, 0)

        def write(conn: Connection) -> dict[int, Result]:
            written: dict[int, Result] = {}
            for index, one in ready.items():
                try:
                    receipt = insert_prepared(conn, one.reg, one.prepared, one.fingerprint)
                    # A replay answers the stored disclosure (if any): fresh salts open nothing.
                    written[index] = Registered(receipt, [], receipt.disclosure_json
                                               if receipt.replayed else one.prepared.disclosure)
                except IdempotencyConflictError as exc:  # raised before its insert: harmless
                    written[index] = exc
            return written

        with disk_full_as_error(services):
            for index, result in group_commit_for(services.engine).run(write).items():
                results[index] = result
    # Committed above; the signal never raises (the sweeper catches anything Redis missed).
    if any(isinstance(r, Registered) and r.receipt.status == "pending" and not r.receipt.replayed
           for r in results):
        signals.stamping.poke()
    done = [r for r in results if r is not None]
    assert len(done) == len(items), "every item has its result"
    return done
