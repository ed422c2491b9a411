"""Stamping batches: claim pending receipts, build the Merkle tree, get tokens over its root.

One batch = one Merkle tree over its receipts' manifest digests (leaf order = leaf_index) and
one RFC 3161 request per enabled TSA, all TSAs asked at once, over the SHA-256 of the batch
head (timestamping.batch_head: root, tree size, batch id, close time, RFC 8785), so the tree
size is signed too. Batches stored before heads existed (head NULL) keep imprinting the root.
Receipts become `stamped` in the transaction that stores the min_tokens-th verified token
(usecases.stamping.results applies that rule); later tokens are added as they arrive. A TSA that
fails is recorded in batch_tsa_attempts with its next attempt time, and retried by `retry`.

Everything here is idempotent: a batch taken over after its lease expired yields the same
tree (same digests, same order, so the same root), and storing a TSA's token twice keeps one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from service.storage import (
    Batch,
    BatchStateError,
    NewToken,
    TsaAttempt,
    claim_batch,
    claim_expired_batch,
    get_batch,
    record_batch_error,
    renew_lease,
)
from service.storage.tables import utcnow
from service.timestamping.batch_head import build_batch_head, head_imprint
from service.timestamping.merkle import MerkleTree
from service.timestamping.tsa_config import TSAConfig
from service.usecases.metrics import observe_batch
from service.usecases.stamping import queries
from service.usecases.stamping.failures import FailureRecorder
from service.usecases.stamping.policy import RetryPolicy, fill_poll_s
from service.usecases.stamping.results import add_token, store_batch_result

log = logging.getLogger(__name__)

Requester = Callable[[TSAConfig, bytes], NewToken]
MAX_PARALLEL_TSAS = 8  # threads asking TSAs at once; config allows 32 TSAs, rarely more than 3
# A TSA still asking when the receipts are stamped is re-asked this long after its timeout
# if its answer never comes (the worker died): the in-flight request has finished by then.
LATE_ANSWER_MARGIN_S = 5.0
AWAITING_ANSWER = "no answer yet when the batch was stamped; waiting in the background"
LEASE_RENEWALS = 3  # renew a third into the lease: two renewals may fail before it lapses


@dataclass(frozen=True)
class BatchOptions:
    """The batching settings (service.settings) this stamper applies."""

    max_size: int
    max_wait_ms: int
    min_tokens: int


class Stamper:
    """Stamps batches for one worker (`owner` names its leases); share it across jobs."""

    def __init__(self, engine: Engine, tsas: Sequence[TSAConfig], request: Requester, *,
                 options: BatchOptions, policy: RetryPolicy, owner: str) -> None:
        self.engine = engine
        self.tsas = {tsa.name: tsa for tsa in tsas}
        self.options = options
        self.owner = owner
        self._request = request
        self._failures = FailureRecorder(engine, policy, self.tsas, options.min_tokens)
        self.lease_s = policy.lease_s([sum(t.timeout) for t in tsas])
        self._pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TSAS, max(1, len(tsas))),
                                        thread_name_prefix="tsa")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait_for_batch(self) -> int:
        """Sleep until N receipts are unbatched or the oldest is T ms old; returns the backlog.

        This bounds a receipt's wait for its batch by batch_max_wait_ms, and lets a batch fill
        when uploads arrive in bursts. The backlog is counted again only while it could reach
        N before the oldest's deadline at the rate it has grown so far; otherwise the worker
        sleeps until that deadline at once (each count is two queries: polling a steady stream
        every quarter wait cost a third of the stamping worker's CPU).
        """
        poll = fill_poll_s(self.options.max_wait_ms)
        max_size, max_wait_s = self.options.max_size, self.options.max_wait_ms / 1000
        while True:
            with self.engine.connect() as conn:
                backlog = queries.unbatched_backlog(conn, max_size)
            if backlog.count == 0 or backlog.count >= max_size:
                return backlog.count
            assert backlog.oldest_created_at is not None
            age_s = max(0.0, (utcnow() - backlog.oldest_created_at).total_seconds())
            left_s = max_wait_s - age_s
            if left_s <= 0:
                return backlog.count
            fill_s = (max_size - backlog.count) * max(age_s, poll) / backlog.count
            if fill_s >= left_s:
                # It will not fill first: claim what is there at the deadline. If another worker
                # claims it meanwhile, claim_batch finds nothing, which it handles.
                time.sleep(left_s)
                return backlog.count
            time.sleep(min(poll, left_s))

    def claim_next(self) -> Batch | None:
        """Claim up to batch_max_size unbatched receipts (after waiting for the batch to fill)."""
        if self.wait_for_batch() == 0:
            return None
        batch = claim_batch(self.engine, self.options.max_size, self.owner, self.lease_s)
        if batch is not None:  # a takeover (claim_expired) was counted by its first claim
            observe_batch(len(batch.leaves))
        return batch

    def claim_expired(self) -> Batch | None:
        """Take over one batch whose worker lost its lease (killed, or partitioned away)."""
        return claim_expired_batch(self.engine, self.owner, self.lease_s)

    def stamp(self, batch: Batch) -> int:
        """Ask the TSAs that still owe this batch a token; store tokens and proofs; tokens got."""
        tree = MerkleTree([bytes.fromhex(d) for d in batch.manifest_digests])
        root = tree.root
        proofs = {leaf.receipt_id: [h.hex() for h in tree.inclusion_proof(leaf.index)]
                  for leaf in batch.leaves}
        if batch.root is not None and batch.root != root.hex():
            raise BatchStateError(f"batch {batch.id}: stored root differs from the rebuilt tree")
        # The head is rebuilt from stored facts only, so a takeover signs the same bytes; a
        # batch whose root was stored without a head (before heads) keeps imprinting the root.
        head: bytes | None = build_batch_head(root, tree.size, batch.id, batch.created_at)
        if batch.root is not None:
            head = batch.head_jcs
        imprint = head_imprint(head) if head is not None else root
        started = time.perf_counter()
        to_ask, have = self._owing(batch.id)
        futures: dict[Future[NewToken], TSAConfig] = {
            self._pool.submit(self._timed, batch.id, tsa, imprint): tsa for tsa in to_ask}
        got: list[NewToken] = []
        handled: set[Future[NewToken]] = set()
        for future, tsa in self._as_completed(batch.id, futures):
            handled.add(future)
            try:
                got.append(future.result())
            except Exception as exc:  # TSAError, or a bug: either way retried later
                self._failures.record(batch.id, tsa, exc)
            if have + len(got) >= self.options.min_tokens:
                break  # enough to stamp now; later TSAs are added as they answer (below)
        # Root and proofs in any case, so retries can add tokens; stamped if enough tokens.
        store_batch_result(self.engine, batch.id, root.hex(), proofs, got,
                           self.options.min_tokens, head_jcs=head)
        for future, tsa in futures.items():
            if future not in handled:
                self._finish_late(batch.id, tsa, future)
        log.info("batch %s: %d receipts, %d token(s) in time", batch.id, len(batch.leaves),
                 len(got), extra={"batch_id": batch.id, "size": len(batch.leaves),
                                  "tokens": len(got), "duration_ms": _ms_since(started)})
        return len(got)

    def _timed(self, batch_id: str, tsa: TSAConfig, imprint: bytes) -> NewToken:
        """Ask `tsa`; one log line per answer or failure, with how long the TSA took."""
        started = time.perf_counter()
        fields = {"batch_id": batch_id, "tsa": tsa.name}
        try:
            token = self._request(tsa, imprint)
        except Exception as exc:  # recorded (and logged with its reason) by FailureRecorder
            log.info("batch %s: %s failed", batch_id, tsa.name, extra={
                **fields, "outcome": type(exc).__name__, "duration_ms": _ms_since(started)})
            raise
        log.info("batch %s: token from %s", batch_id, tsa.name, extra={
            **fields, "outcome": "token", "serial": str(token.serial),
            "duration_ms": _ms_since(started)})
        return token

    def _finish_late(self, batch_id: str, tsa: TSAConfig, future: Future[NewToken]) -> None:
        """Let a TSA that answers after the receipts were stamped add its token in the background.

        The job returns at once (a slow TSA must not hold a worker for its whole timeout). The
        attempt is recorded as due after that TSA's timeout, so if this process dies before the
        answer arrives, the sweeper asks again; an answer that does arrive marks it done.
        """
        if not future.done():
            due = utcnow() + timedelta(seconds=sum(tsa.timeout) + LATE_ANSWER_MARGIN_S)
            record_batch_error(self.engine, batch_id, tsa.name, AWAITING_ANSWER, due,
                               rejected=False)

        def settle(done: Future[NewToken]) -> None:
            try:
                add_token(self.engine, batch_id, done.result(), self.options.min_tokens)
            except Exception as exc:
                try:
                    self._failures.record(batch_id, tsa, exc)
                except Exception:
                    log.exception("batch %s: could not record %s's late failure", batch_id,
                                  tsa.name)

        future.add_done_callback(settle)

    def retry(self, batch_id: str, tsa_name: str) -> bool:
        """One due retry of one TSA for a batch whose root is stored; True if a token came."""
        tsa = self.tsas.get(tsa_name)
        with self.engine.connect() as conn:
            batch = get_batch(conn, batch_id)
            attempt = queries.batch_attempts(conn, batch_id).get(tsa_name)
            have = tsa_name in queries.token_tsas(conn, batch_id)
        if tsa is None or batch is None or batch.root is None or have:
            return False  # TSA no longer configured, or nothing (left) to do
        if attempt is not None and attempt.state != "pending":
            return False
        imprint = (head_imprint(batch.head_jcs) if batch.head_jcs is not None
                   else bytes.fromhex(batch.root))  # format 1 batches: the root itself
        try:
            token = self._timed(batch_id, tsa, imprint)
        except Exception as exc:
            self._failures.record(batch_id, tsa, exc)
            return False
        add_token(self.engine, batch_id, token, self.options.min_tokens)
        return True

    def _owing(self, batch_id: str) -> tuple[list[TSAConfig], int]:
        """TSAs to ask (all for a fresh batch; after a takeover, those without token or plan),
        and how many tokens the batch already holds."""
        now = utcnow()
        with self.engine.connect() as conn:
            have = queries.token_tsas(conn, batch_id)
            attempts = queries.batch_attempts(conn, batch_id)
        owing = [tsa for name, tsa in self.tsas.items()
                 if name not in have and _due(attempts.get(name), now)]
        return owing, len(have)

    def _as_completed(self, batch_id: str, futures: dict[Future[NewToken], TSAConfig]
                      ) -> Iterator[tuple[Future[NewToken], TSAConfig]]:
        """Yield futures as they finish, renewing the batch lease while TSAs are slow."""
        pending = set(futures)
        renew_every = self.lease_s / LEASE_RENEWALS
        renewed = time.monotonic()
        while pending:
            done, pending = wait(pending, timeout=renew_every, return_when=FIRST_COMPLETED)
            for future in done:
                yield future, futures[future]
            if pending and time.monotonic() - renewed >= renew_every:
                renew_lease(self.engine, batch_id, self.owner, self.lease_s)
                renewed = time.monotonic()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _due(attempt: TsaAttempt | None, now: datetime) -> bool:
    if attempt is None:
        return True
    if attempt.state != "pending":
        return False  # done or given up
    return attempt.next_attempt_at is None or attempt.next_attempt_at <= now

