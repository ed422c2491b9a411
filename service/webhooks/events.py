"""Webhook events: their names, the JSON receivers get, and the receipt links inside it.

Pure: the caller reads the facts (a receipt, its batch's tokens) and stores the payload; this
module only shapes it. A payload is serialised once, compactly with sorted keys, and that exact
text is stored in the outbox and sent on every attempt (receivers verify the signature over it).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from service.evidence.manifest import format_timestamp

STAMPED = "receipt.stamped"  # the receipt got its min_tokens-th verified token
FAILED = "receipt.failed"  # the receipt was given up on (reason included)
TOKEN_ADDED = "receipt.token_added"  # noqa: S105 (a name): a later TSA's token, once stamped
EVENTS = (STAMPED, FAILED, TOKEN_ADDED)  # what endpoints may subscribe to, in the README's order


class TokenFacts(Protocol):
    """What an event shows of a stored token."""

    @property
    def tsa(self) -> str: ...
    @property
    def gen_time(self) -> datetime: ...
    @property
    def serial(self) -> str: ...


class ReceiptFacts(Protocol):
    """What an event shows of a receipt; `tokens` are its batch's, by TSA name."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def manifest_digest(self) -> str: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def stamped_at(self) -> datetime | None: ...
    @property
    def tokens(self) -> Sequence[TokenFacts]: ...


def receipt_links(receipt_id: str) -> dict[str, str]:
    """The receipt's URLs, path-absolute (clients prefix their API's address), as the API shows."""
    base = f"/v1/stamps/{receipt_id}"
    return {"self": base, "bundle": f"{base}/bundle", "tokens": f"{base}/tokens"}


def token_link(receipt_id: str, tsa: str) -> str:
    """Where one TSA's DER token for the receipt is downloaded."""
    return f"{receipt_links(receipt_id)['tokens']}/{tsa}.tsr"


def _token_json(receipt_id: str, token: TokenFacts) -> dict[str, Any]:
    return {"tsa": token.tsa, "gen_time": format_timestamp(token.gen_time),
            "serial": token.serial, "link": token_link(receipt_id, token.tsa)}


def event_data(event: str, receipt: ReceiptFacts, new_tsas: Collection[str] = ()) -> dict[str, Any]:
    """The event's `data`: the receipt, plus the reason (failed) or its links and the tokens
    (every token when stamped; only the new TSAs' when a token was added)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    data: dict[str, Any] = {"id": receipt.id, "status": receipt.status,
                            "manifest_digest": receipt.manifest_digest,
                            "external_id": receipt.external_id}
    if event == FAILED:
        data["reason"] = receipt.failure
        return data
    if receipt.stamped_at is None:
        raise ValueError(f"{event} for receipt {receipt.id}, which has no stamped_at")
    data["stamped_at"] = format_timestamp(receipt.stamped_at)
    data["links"] = receipt_links(receipt.id)
    shown = [t for t in receipt.tokens if event == STAMPED or t.tsa in new_tsas]
    data["tokens"] = [_token_json(receipt.id, t) for t in shown]
    return data


def event_payload(event: str, receipt: ReceiptFacts, *, now: datetime,
                  new_tsas: Collection[str] = ()) -> str:
    """The body receivers get: `{"type", "timestamp", "data"}`, compact JSON with sorted keys."""
    body = {"type": event, "timestamp": format_timestamp(now),
            "data": event_data(event, receipt, new_tsas)}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)
