"""Receipts as JSON: what GET /v1/stamps/{id} and the list answer (HTTP out, no queries here)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from flask import url_for

from service.evidence.manifest import format_timestamp
from service.usecases.receipts import Receipt, proof_json
from service.web.problems import INVALID_FIELD, ApiError
from service.webhooks.events import receipt_links

CURSOR_VERSION = "v1:"  # cursors are opaque to clients; a version lets their format change


class TokenRow(Protocol):
    """What rendering needs of a stored token."""

    tsa: str
    reply_der: bytes
    gen_time: datetime
    serial: str


def _time(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def links(receipt_id: str) -> dict[str, str]:
    """The receipt's own URLs (path-absolute), the same ones its webhook events carry."""
    return receipt_links(receipt_id)


def token_json(receipt_id: str, token: TokenRow) -> dict[str, Any]:
    """One TSA token: who, when, serial, and the DER TimeStampResp in base64."""
    return {
        "tsa": token.tsa,
        "gen_time": _time(token.gen_time),
        "serial": token.serial,
        "token": base64.b64encode(token.reply_der).decode("ascii"),
        "links": {
            "self": url_for("stamps.get_token", receipt_id=receipt_id, tsa=token.tsa),
        },
    }


def summary_json(receipt: Receipt) -> dict[str, Any]:
    """The fields shown in lists and in the 202 answer."""
    body: dict[str, Any] = {
        "id": receipt.id,
        "status": receipt.status,
        "created_at": _time(receipt.created_at),
        "manifest_digest": receipt.manifest_digest,
        "image_sha256": receipt.image_sha256,
        "external_id": receipt.external_id,
        "stamped_at": _time(receipt.stamped_at),
        "warnings": receipt.warnings,
        "links": links(receipt.id),
    }
    if receipt.session is not None:  # the iteration history, as the manifest states it
        body["session"] = receipt.session
    if b'"parents":' in receipt.manifest_jcs:  # JCS has no spaces; parse only when present
        parents = json.loads(receipt.manifest_jcs).get("parents")
        if parents:
            body["parents"] = parents
    if receipt.status == "failed":
        body["failure"] = receipt.failure
    if receipt.status == "pending" and receipt.last_error:
        body["last_error"] = receipt.last_error
    return body


def receipt_json(receipt: Receipt, tokens: Iterable[TokenRow]) -> dict[str, Any]:
    """Everything about one receipt: manifest (as hashed), proof and tokens."""
    body = summary_json(receipt)
    body.update(
        manifest=json.loads(receipt.manifest_jcs),
        public=receipt.public,
        proof=proof_json(receipt),
        tokens=[token_json(receipt.id, t) for t in tokens],
    )
    return body


def encode_cursor(last_id: str | None) -> str | None:
    """The opaque cursor for the page after `last_id`."""
    if last_id is None:
        return None
    return base64.urlsafe_b64encode((CURSOR_VERSION + last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The receipt id inside a cursor; 400 for anything we did not issue."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise ApiError(INVALID_FIELD, "cursor is not valid") from exc
    if not text.startswith(CURSOR_VERSION) or len(text) > 100:
        raise ApiError(INVALID_FIELD, "cursor is not valid")
    return text.removeprefix(CURSOR_VERSION)
