"""A registration's iteration history and privacy fields: `session`, `parents`, `private_record`.

`read_lineage` is the one parser of these fields, called by every registration path (the JSON
and multipart bodies of POST /v1/stamps, inbound hooks, the batch endpoint), so they are
bounded and spelt alike everywhere. `resolve_parents` turns receipt ids into the manifest
digests the new manifest names; the manifest keeps `{"receipt", "manifest_sha256"}` for a
receipt and `{"image_sha256"}` for an image digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from service.errors import InvalidInputError
from service.evidence.disclosure import check_commitments
from service.storage.receipts import get_receipt
from service.storage.tables import SESSION_LENGTH

MAX_SESSION_CHARS = SESSION_LENGTH  # the column; a UUID, a folder name and a date fit
MAX_PARENTS = 16  # img2img source, previous iteration, upscale original, a few ControlNet inputs
LINEAGE_FIELDS = frozenset({"session", "parents", "private_record", "commitments",
                            "store_disclosure"})
_SESSION = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_SESSION_CHARS - 1}}}")
_RECEIPT_ID = re.compile(r"rcp_[0-9A-HJKMNP-TV-Z]{26}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


class UnknownParentError(InvalidInputError):
    """A parent names a receipt id that the registering key does not own (or none at all)."""


@dataclass(frozen=True)
class Lineage:
    """The history and privacy fields of one registration, checked."""

    session: str | None = None
    parents: tuple[str, ...] = ()  # receipt ids and lower-case image digests, as given
    private_record: bool = False
    commitments: dict[str, str] | None = None  # computed by the client (hash-only + private)
    store_disclosure: bool = False  # the server keeps the salts and values (only when asked)


def read_lineage(fields: Mapping[str, Any], *, text: bool = False) -> Lineage:
    """The lineage fields of a request body; InvalidInputError names what is wrong.

    `text`: the values are form fields (strings): parents as a JSON array or comma-separated,
    booleans as true/false, commitments as JSON text.
    """
    given_null = sorted(k for k in LINEAGE_FIELDS if k in fields and fields[k] is None)
    if given_null:  # as for external_id: omit a field for none
        raise InvalidInputError(f"{', '.join(given_null)} must not be null; omit it for none")
    session = fields.get("session")
    if session is not None and not (isinstance(session, str) and _SESSION.fullmatch(session)):
        raise InvalidInputError(f"session must be 1..{MAX_SESSION_CHARS} of A-Z a-z 0-9 . _ : - "
                                "(not starting with a punctuation mark)")
    parents = fields.get("parents", [])
    if text and isinstance(parents, str):
        parents = _json_text(parents, "parents") if parents.lstrip().startswith("[") else [
            p.strip() for p in parents.split(",") if p.strip()]
    if not isinstance(parents, list) or len(parents) > MAX_PARENTS:
        raise InvalidInputError(f"parents must be a list of at most {MAX_PARENTS} receipt ids or "
                                "image sha256 digests")
    checked: list[str] = []
    for parent in parents:
        if isinstance(parent, str) and _SHA256.fullmatch(parent):
            checked.append(parent.lower())
        elif isinstance(parent, str) and _RECEIPT_ID.fullmatch(parent):
            checked.append(parent)
        else:
            raise InvalidInputError("each parent is a receipt id (rcp_...) or an image sha256")
    commitments = fields.get("commitments")
    if text and isinstance(commitments, str):
        commitments = _json_text(commitments, "commitments")
    private = _bool(fields.get("private_record"), "private_record", text)
    if commitments is not None:
        if not private:
            raise InvalidInputError("commitments are sent only with private_record true")
        commitments = check_commitments(commitments)
    return Lineage(session=session, parents=tuple(dict.fromkeys(checked)),
                   private_record=private, commitments=commitments,
                   store_disclosure=_bool(fields.get("store_disclosure"), "store_disclosure",
                                          text))


def resolve_parents(conn: Connection, owner: str, parents: Sequence[str]) -> list[dict[str, str]]:
    """The manifest's parent entries: a receipt id becomes its manifest digest (UnknownParentError
    unless `owner` owns it), an image digest stays a digest."""
    resolved: list[dict[str, str]] = []
    for parent in parents:
        if parent.startswith("rcp_"):
            receipt = get_receipt(conn, parent, owner)
            if receipt is None:
                raise UnknownParentError(f"parent {parent} is not a receipt of this API key")
            resolved.append({"receipt": receipt.id, "manifest_sha256": receipt.manifest_digest})
        else:
            resolved.append({"image_sha256": parent})
    return resolved


def _json_text(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{name} is not valid JSON") from exc


def _bool(value: Any, name: str, text: bool) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInputError(f"{name} must be true or false")
