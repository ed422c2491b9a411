"""The watcher's side of the API: register queued images, poll their receipts, write bundles.

Every request goes through `_register`, `_poll` and `_fetch` (one call site each, on the
single-file functions of service.client.api), so they can move to the batch API in one place.
While the server is unreachable (no answer, 429, 5xx gateways) nothing is lost: the rows stay
queued or pending in the state file and the next attempt waits longer each time (back-off).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from service.client.api import ClientError, StampClient
from service.client.watch_backoff import DEFAULT_RETRY_MAX_S, Backoff
from service.client.watch_state import Entry, WatchState
from service.errors import ChronosealError, MalformedInputError
from service.evidence.bundle_check import check_bundle
from service.evidence.manifest import canonicalize
from service.timestamping.serials import write_atomically

POLL_FIRST_S = 0.5  # most batches close within a second (batch_max_wait_ms)
POLL_FACTOR = 1.6
POLL_MAX_S = 5.0  # a stamp delayed by TSA retries is polled every 5 s
IDLE_S = 5.0  # nothing to send: the caller waits for events, or this long
MAX_REQUESTS_PER_STEP = 64  # then the watcher looks at new files again before going on
MAX_RESUBMITS = 5  # a receipt failed on the server is registered again at most this often
IDEMPOTENCY_KEY_STEM = 100  # the key's digest part, kept when a failed receipt's id is added
BUNDLE_MODE = 0o644  # evidence is for showing: readable like the images beside it
REFUSED_KEY = (401, 403)

Report = Callable[[str, Path, str], None]  # (event, image, detail)


class KeyRefusedError(ChronosealError):
    """The server refused the API key: no request can succeed, so the watcher stops."""


@dataclass(frozen=True)
class SendOptions:
    upload: bool  # send the image itself, not only its digest
    roots: Sequence[x509.Certificate] | None  # the bundles must chain to these (None: bundled)
    send_session: bool  # name the session in the registration (servers with sessions only)
    bundle_for: Callable[[Path], Path]  # where an image's bundle goes


def registration_key(sha256: str, metadata: dict[str, Any], extra: dict[str, Any],
                     upload: bool, record: dict[str, Any] | None = None) -> str:
    """The Idempotency-Key: a digest of what is sent, so a repeat finds the same receipt."""
    mode = "upload" if upload else "digest"
    sent = {"mode": mode, "sha256": sha256, "metadata": metadata, **extra}
    if record:
        sent["record"] = record
    return "chronoseal-watch:" + hashlib.sha256(canonicalize(sent)).hexdigest()


def encode_sent(metadata: dict[str, Any], record: dict[str, Any] | None) -> str:
    """What the state file keeps of a registration's body: the stated metadata and the record
    read from the file (hash-only)."""
    return json.dumps({"metadata": metadata, "record": record})


def decode_sent(text: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """`encode_sent` reversed; a state row of an earlier version holds the metadata alone."""
    data = json.loads(text)
    if isinstance(data, dict) and set(data) == {"metadata", "record"}:
        return data["metadata"], data["record"]
    return data, None


def extra_fields(session: str, options: SendOptions) -> dict[str, str]:
    """Registration fields besides the digest and the record."""
    return {"session": session} if options.send_session else {}


class Sender:
    """Moves state rows forward, a bounded number of requests per step."""

    def __init__(self, client: StampClient, state: WatchState, options: SendOptions,
                 report: Report, retry_max_s: float = DEFAULT_RETRY_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.state, self.options, self.report = client, state, options, report
        self.clock = clock
        self.backoff = Backoff(retry_max_s, clock)
        self._polls: dict[Path, tuple[float, float]] = {}  # path -> (next poll at, pause)

    def step(self) -> float:
        """Send what is due; the seconds until something is due again (for the caller's wait)."""
        if not self.backoff.ready():
            return self.backoff.wait_s()
        requests = 0
        try:
            for entry in self.state.unfinished():
                if requests >= MAX_REQUESTS_PER_STEP:
                    return 0.0
                if entry.status == "queued":
                    requests += 1
                    self._register(entry)
                elif self._due(entry.path):
                    requests += 1
                    self._poll(entry)
        except ClientError as exc:
            if exc.status in REFUSED_KEY:
                raise KeyRefusedError(f"the server refused the API key ({exc})") from exc
            if not exc.retryable:
                raise
            delay = self.backoff.failed()
            waiting = len(self.state.unfinished())
            self.report("unreachable", Path(), f"{exc}; {waiting} waiting, retry in {delay:.0f} s")
            return delay
        now = self.clock()
        return min((at - now for at, _ in self._polls.values()), default=IDLE_S)

    def _due(self, path: Path) -> bool:
        at, _ = self._polls.setdefault(path, (self.clock(), POLL_FIRST_S))
        return self.clock() >= at

    def _register(self, entry: Entry) -> None:
        metadata, record = decode_sent(entry.metadata)
        extra = extra_fields(entry.session, self.options)
        try:
            if self.options.upload:
                accepted = self.client.register_upload(entry.path, metadata,
                                                       entry.idempotency_key, extra)
            else:
                accepted = self.client.register_digest(entry.sha256, metadata,
                                                       entry.idempotency_key, extra, record)
        except OSError as exc:  # an upload whose file went away after it settled
            self._fail(entry, f"cannot read the image: {exc.strerror or exc}")
            return
        except ClientError as exc:
            if exc.retryable or exc.status in REFUSED_KEY:
                raise
            self._fail(entry, str(exc))
            return
        self._reached()
        self.state.accepted(entry.path, str(accepted["id"]))
        self._polls[entry.path] = (self.clock() + POLL_FIRST_S, POLL_FIRST_S)
        self.report("registered", entry.path, str(accepted["id"]))

    def _poll(self, entry: Entry) -> None:
        receipt_id = str(entry.receipt_id)
        try:
            receipt = self.client.receipt(receipt_id)
        except ClientError as exc:
            if exc.retryable or exc.status in REFUSED_KEY:
                raise
            self._fail(entry, f"{receipt_id}: {exc}")
            return
        self._reached()
        status = receipt.get("status")
        if status == "stamped":
            self._fetch(entry, receipt_id)
        elif status == "failed":
            self._resubmit(entry, receipt_id, str(receipt.get("failure")))
        else:
            _, pause = self._polls[entry.path]
            pause = min(pause * POLL_FACTOR, POLL_MAX_S)
            self._polls[entry.path] = (self.clock() + pause, pause)

    def _fetch(self, entry: Entry, receipt_id: str) -> None:
        data = self.client.bundle(receipt_id)
        try:
            verdict = check_bundle(data, image_sha256=entry.sha256, roots=self.options.roots)
        except MalformedInputError as exc:
            self._fail(entry, f"{receipt_id}: not a bundle: {exc}")
            return
        if not verdict.valid:
            self._fail(entry, f"{receipt_id}: the bundle does not verify: "
                       + "; ".join(verdict.reasons))
            return
        target = self.options.bundle_for(entry.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data, mode=BUNDLE_MODE)
        except OSError as exc:
            self._fail(entry, f"{receipt_id}: cannot write {target}: {exc.strerror or exc}")
            return
        self._polls.pop(entry.path, None)
        self.state.stamped(entry.path, target)
        self.report("stamped", entry.path, str(target))

    def _resubmit(self, entry: Entry, receipt_id: str, failure: str) -> None:
        """A receipt the server gave up on is registered again under a key naming it."""
        self._polls.pop(entry.path, None)
        if entry.resubmits >= MAX_RESUBMITS:
            self._fail(entry, f"{receipt_id} failed, as did {MAX_RESUBMITS} retries: {failure}")
            return
        key = f"{entry.idempotency_key[:IDEMPOTENCY_KEY_STEM]}:after:{receipt_id}"
        self.state.resubmit(entry.path, key, f"{receipt_id} failed: {failure}")

    def _fail(self, entry: Entry, detail: str) -> None:
        self._polls.pop(entry.path, None)
        self.state.failed(entry.path, detail)
        self.report("failed", entry.path, detail)

    def _reached(self) -> None:
        if self.backoff.succeeded():
            self.report("reachable", Path(), self.client.server)
