"""A whole `chronoseal stamp` run, in stages that overlap: hash, register, wait, fetch.

Files are hashed by a few threads (hashlib releases the GIL); --hash-only digests are
registered in batches (POST /v1/stamps/batch) while hashing goes on, uploads one per thread;
one thread long-polls POST /v1/stamps/wait for every receipt still pending, and bundles are
fetched, checked and written by a pool as soon as their receipts are stamped. So a run costs
about its hashing time plus one stamp, instead of a round trip per file and poll.

Every thread is a daemon: `cancel()` (Ctrl-C) lets requests in flight finish or be abandoned,
and the run ends at once with what it has. A refused key or an unreachable server ends the run
at the first such answer (`fatal`), not once per file.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from service.client.api import ClientError, StampClient, digest_item
from service.client.embed import embed_copy
from service.client.stamping import (
    MAX_RESUBMITS,
    Options,
    Outcome,
    answered_disclosure,
    bundle_path,
    idempotency_key,
    key_after_failure,
    read_local_record,
    request_fields,
    sha256_file,
    valid_bundle,
    write_atomically,
)
from service.errors import EmbedError, MalformedInputError
from service.evidence.bundle import with_disclosure
from service.evidence.bundle_check import TokenMemo, check_bundle
from service.evidence.disclosure import Opening, disclosure_document

HASH_THREADS = 2  # two cores here: hashing is disk and SHA-256 bound, more threads only queue
BATCH_ITEMS = 200  # per POST /v1/stamps/batch (the server takes 1,000): stamping starts sooner
BATCH_BYTES = 8 * 1024 * 1024  # half the server's body bound, records included
BATCH_LINGER_S = 0.05  # wait this long for more hashed files before sending a batch
WAIT_S = 10.0  # one long poll; the server answers as soon as one receipt is settled
WAIT_IDS = 1000  # ids per long poll, the server's bound
FETCH_IDS = 25  # bundles per POST /v1/stamps/bundles (the server's bound is 100): ~0.7 MB,
# and small enough that the fetch threads share a batch's bundles between them
RETRIES = 4  # a retryable answer (429, 503, a dropped connection) is tried again this often
RETRY_PAUSE_S = 1.0  # then 2, 4, 8 s: a restarting server is back within these


@dataclass
class _Item:
    """One file on its way through the stages."""

    path: Path
    sha256: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # session, parents, private record
    opened: dict[str, Opening] | None = None  # a private record committed here: its openings
    disclosure: bytes | None = None  # disclosure.json, kept only in the creator's bundle
    key: str = ""
    receipt_id: str = ""
    registered_at: float = 0.0
    resubmits: int = 0


Events = Callable[[str, Path, str], None]  # (kind, file, text): "warning" or "state"


class StampRun:
    """Run files through; `run()` returns one Outcome per file (in order), `cancel()` stops."""

    def __init__(self, client: StampClient, options: Options, jobs: int,
                 events: Events, done: Callable[[Outcome], None]) -> None:
        self.client, self.options, self.jobs = client, options, jobs
        self._events, self._done = events, done
        self._outcomes: dict[Path, Outcome] = {}
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._stopped = threading.Event()
        self.fatal: str | None = None  # why the run stopped early, when it did
        self._total = 0
        self._hash_q: queue.Queue[_Item] = queue.Queue()
        self._register_q: queue.Queue[_Item] = queue.Queue()
        self._fetch_q: queue.Queue[tuple[_Item, dict[str, Any]]] = queue.Queue()
        self._waiting: dict[str, _Item] = {}
        self._more_waiting = threading.Condition(self._lock)
        self._memo = TokenMemo()  # a batch's token checks, made once for all its bundles

    # -- the run ------------------------------------------------------------------------------
    def run(self, paths: list[Path], poll_s: float = 0.2) -> list[Outcome]:
        """Stamp `paths`; returns when every file has its outcome, or at cancel()/fatal."""
        self._total = len(paths)
        for path in paths:
            self._hash_q.put(_Item(path))
        register = self._register_batches if self.options.hash_only else self._upload_each
        self._start(self._hash_each, min(HASH_THREADS, len(paths)))
        self._start(register, 1 if self.options.hash_only else self.jobs)
        self._start(self._wait_all, 1)
        self._start(self._fetch_each, self.jobs)
        while not self._finished.wait(poll_s):  # a timed wait: Ctrl-C gets through
            pass
        return self.outcomes(paths)

    def outcomes(self, paths: list[Path]) -> list[Outcome]:
        """The outcomes so far, in the order of `paths` (all of them once run() returned)."""
        with self._lock:
            return [self._outcomes[p] for p in paths if p in self._outcomes]

    def cancel(self) -> None:
        """Stop taking work; threads in a request finish it or are abandoned (daemons)."""
        self._stopped.set()
        self._finished.set()
        with self._lock:
            self._more_waiting.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._stopped.is_set()

    def _start(self, target: Callable[[], None], count: int) -> None:
        for _ in range(max(count, 1)):
            threading.Thread(target=self._guarded(target), daemon=True).start()

    def _guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except ClientError as exc:  # only fatal ones get here (see _call)
                self.fatal = self.fatal or str(exc)
                self.cancel()
        return body

    def _finish(self, item: _Item, state: str, detail: str, bundle: Path | None = None) -> None:
        outcome = Outcome(item.path, state, detail, bundle)
        with self._lock:
            if item.path in self._outcomes or self._stopped.is_set():
                return
            self._outcomes[item.path] = outcome
            if len(self._outcomes) == self._total:
                self._finished.set()
        self._done(outcome)

    def _call(self, request: Callable[[], Any]) -> Any:
        """The request, tried again on retryable answers; fatal ones end the run."""
        for attempt in range(RETRIES + 1):
            try:
                return request()
            except ClientError as exc:
                if exc.fatal or (exc.unreachable and attempt == RETRIES):
                    raise ClientError(str(exc), fatal=True) from exc
                if not exc.retryable or attempt == RETRIES or self._stopped.wait(
                        RETRY_PAUSE_S * 2 ** attempt):
                    raise
        raise AssertionError("unreachable")

    # -- stage 1: hash (and read the record, and skip what is done) ------------------------------
    def _hash_each(self) -> None:
        while not self._stopped.is_set():
            try:
                item = self._hash_q.get_nowait()
            except queue.Empty:
                return
            try:
                self._hash(item)
            except (OSError, MalformedInputError) as exc:
                self._finish(item, "failed", str(exc))

    def _hash(self, item: _Item) -> None:
        item.sha256 = sha256_file(item.path)
        target = bundle_path(item.path, self.options.out_dir)
        if valid_bundle(target, item.sha256, self.options.roots, self._memo):
            self._finish(item, "skipped", "a valid bundle exists", target)
            return
        item.metadata = dict(self.options.metadata)
        if self.options.hash_only:
            local = read_local_record(item.path)
            item.record = local.record
            for warning in local.warnings:
                self._events("warning", item.path, warning)
        item.key = idempotency_key(self.options.hash_only, item.sha256, item.metadata,
                                   item.record, self.options.lineage)
        item.extra, item.opened = request_fields(self.options, item.metadata, item.record)
        if item.opened is not None:  # committed here: only the commitments leave this machine
            item.metadata, item.record = {}, None
        if self.options.private_record:  # fresh salts each run: a replay could not be opened
            item.key = f"chronoseal-stamp:private:{secrets.token_hex(16)}"
        self._register_q.put(item)

    # -- stage 2: register ------------------------------------------------------------------------
    def _register_batches(self) -> None:
        while not self._stopped.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            bodies = [{**i.extra, **digest_item(i.sha256, i.metadata, i.record, i.key)}
                      for i in batch]
            try:
                results = self._call(partial(self.client.register_batch, bodies))
            except ClientError as exc:
                if exc.fatal:
                    raise
                for item in batch:
                    self._finish(item, "failed", str(exc))
                continue
            for item, result in zip(batch, results, strict=True):
                self._registered(item, result.get("receipt"), result.get("problem"))

    def _next_batch(self) -> list[_Item]:
        """Hashed files, up to BATCH_ITEMS/BATCH_BYTES, lingering briefly for more."""
        try:
            first = self._register_q.get(timeout=0.2)
        except queue.Empty:
            return []
        batch, size = [first], len(json.dumps(first.record or {}))
        while len(batch) < BATCH_ITEMS and size < BATCH_BYTES:
            try:
                item = self._register_q.get(timeout=BATCH_LINGER_S)
            except queue.Empty:
                break
            batch.append(item)
            size += len(json.dumps(item.record or {})) + len(json.dumps(item.metadata)) + 200
        return batch

    def _upload_each(self) -> None:
        while not self._stopped.is_set():
            try:
                item = self._register_q.get(timeout=0.2)
            except queue.Empty:
                continue
            self._events("state", item.path, "uploading")
            try:
                accepted = self._call(partial(
                    self.client.register_upload, item.path, item.metadata, item.key,
                    item.extra))
            except ClientError as exc:
                if exc.fatal:
                    raise
                self._finish(item, "failed", str(exc))
                continue
            except OSError as exc:
                self._finish(item, "failed", str(exc))
                continue
            self._registered(item, accepted, None)

    def _registered(self, item: _Item, receipt: dict[str, Any] | None,
                    problem: dict[str, Any] | None) -> None:
        if receipt is None:
            slug = str((problem or {}).get("type", "")).rsplit(":", 1)[-1]
            detail = (problem or {}).get("detail") or (problem or {}).get("title") or ""
            self._finish(item, "failed", f"HTTP {(problem or {}).get('status')} {slug}: {detail}")
            return
        for warning in receipt.get("warnings") or ():
            self._events("warning", item.path, str(warning))
        if receipt.get("status") == "failed":  # replayed, and it had failed: register anew
            if item.resubmits >= MAX_RESUBMITS:
                self._finish(item, "failed", f"{receipt['id']} failed, as did "
                             f"{MAX_RESUBMITS} retries; see its failure")
                return
            item.resubmits += 1
            item.key = key_after_failure(item.key, str(receipt["id"]))
            self._register_q.put(item)
            return
        item.receipt_id, item.registered_at = str(receipt["id"]), time.monotonic()
        item.disclosure = (disclosure_document(str(receipt["manifest_digest"]), item.opened)
                           if item.opened is not None else answered_disclosure(receipt))
        with self._lock:
            self._waiting[item.receipt_id] = item
            self._more_waiting.notify()

    # -- stage 3: wait for many receipts at once -----------------------------------------------
    def _wait_all(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                while not self._waiting and not self._stopped.is_set():
                    self._more_waiting.wait(0.5)
                ids = list(self._waiting)[:WAIT_IDS]
            if not ids:
                continue
            answer = self._call(partial(self.client.wait, ids, WAIT_S))
            for receipt in answer.get("items") or ():
                self._settled(receipt)
            self._give_up_late(answer.get("unknown") or (), answer.get("pending") or ())

    def _settled(self, receipt: dict[str, Any]) -> None:
        with self._lock:
            item = self._waiting.pop(str(receipt.get("id")), None)
        if item is None:
            return
        if receipt.get("status") == "stamped":
            self._fetch_q.put((item, receipt))
        else:
            self._finish(item, "failed", f"{item.receipt_id} failed: {receipt.get('failure')}")

    def _give_up_late(self, unknown: Iterable[str], pending: Iterable[str]) -> None:
        now = time.monotonic()
        for receipt_id in unknown:
            with self._lock:
                item = self._waiting.pop(receipt_id, None)
            if item is not None:
                self._finish(item, "failed", f"{receipt_id}: the server does not know it")
        for receipt_id in pending:
            with self._lock:
                item = self._waiting.get(receipt_id)
                late = item is not None and now - item.registered_at > self.options.wait_s
                if late:
                    self._waiting.pop(receipt_id)
            if late and item is not None:
                self._finish(item, "failed", f"{receipt_id} still pending after "
                             f"{self.options.wait_s:g} s; run again to resume")

    # -- stage 4: fetch, check and write bundles ------------------------------------------------
    def _fetch_each(self) -> None:
        while not self._stopped.is_set():
            try:
                batch = [self._fetch_q.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < FETCH_IDS:  # the receipts stamped meanwhile, in one request
                try:
                    batch.append(self._fetch_q.get_nowait())
                except queue.Empty:
                    break
            try:
                found = self._fetch(batch)
            except ClientError as exc:
                if exc.fatal:
                    raise
                for item, _ in batch:
                    self._finish(item, "failed", str(exc))
                continue
            for item, receipt in batch:
                data = found.get(item.receipt_id)
                if data is None:
                    self._finish(item, "failed", f"{item.receipt_id}: the server has no bundle")
                    continue
                try:
                    self._write(item, receipt, data)
                except (OSError, MalformedInputError, EmbedError) as exc:
                    self._finish(item, "failed", str(exc))
                except ClientError as exc:
                    if exc.fatal:
                        raise
                    self._finish(item, "failed", str(exc))

    def _fetch(self, batch: list[tuple[_Item, dict[str, Any]]]) -> dict[str, bytes]:
        """The bundles of `batch` by receipt id: many per request, or (--history, which the
        many-bundles route does not carry) one at a time."""
        if not self.options.history:
            found, _ = self._call(partial(self.client.bundles, [i.receipt_id for i, _ in batch],
                                          self.options.exhibit))
            return dict(found)
        return {item.receipt_id: self._call(partial(self.client.bundle, item.receipt_id,
                                                    history=True)) for item, _ in batch}

    def _write(self, item: _Item, receipt: dict[str, Any], data: bytes) -> None:
        if item.disclosure is not None:  # kept only here, in the creator's copy of the bundle
            data = with_disclosure(data, item.disclosure)
        verdict = check_bundle(data, image_sha256=item.sha256, roots=self.options.roots,
                               memo=self._memo)
        if not verdict.valid:
            self._finish(item, "failed", f"{item.receipt_id}: the bundle does not verify: "
                         + "; ".join(verdict.reasons))
            return
        target = bundle_path(item.path, self.options.out_dir)
        write_atomically(target, data)
        detail = f"{item.receipt_id} at {receipt.get('stamped_at')}"
        if self.options.embed is not None:  # the full receipt: manifest, proof, tokens
            full = self._call(partial(self.client.receipt, item.receipt_id))
            copy, child_id = embed_copy(self.client, item.path, full, data, self.options.embed,
                                        self.options.out_dir)
            detail += f"; Content Credentials copy {copy} registered as {child_id}"
        self._finish(item, "stamped", detail, target)


def stamp_file(client: StampClient, path: Path, options: Options,
               report: Callable[[Path, str], None]) -> Outcome:
    """One file through the stages of a whole run; never raises for the file's own problems
    (they become `failed`). `report(path, text)` gets its states and warnings."""
    run = StampRun(client, options, 1, lambda kind, p, text: report(p, text), lambda _: None)
    outcomes = run.run([path])
    return outcomes[0] if outcomes else Outcome(path, "failed", run.fatal or "not finished")
