"""Reading the pages' forms: an optional image (spooled and hashed) and short text fields."""

from __future__ import annotations

import re

from flask import request

from service.usecases.register import SpooledImage, spool_image
from service.web.problems import INVALID_DIGEST, INVALID_FIELD, PAYLOAD_TOO_LARGE, ApiError

MAX_TEXT_CHARS = 100  # receipt ids (~30), digests (64), filters: longer is not ours
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def text(name: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """A text field (form or query), stripped; None when empty; 400 past `limit` characters."""
    value = (request.values.get(name) or "").strip()
    if len(value) > limit:
        raise ApiError(INVALID_FIELD, f"{name} is at most {limit} characters")
    return value or None


def digest(name: str) -> str | None:
    """A SHA-256 hex field, lower-cased; None when empty."""
    value = text(name)
    if value is not None and not _SHA256_HEX.fullmatch(value):
        raise ApiError(INVALID_DIGEST)
    return value.lower() if value else None


def image(name: str, limit: int) -> SpooledImage | None:
    """The uploaded file `name`, hashed into a spool (the caller closes it); None when absent."""
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        return None
    return spool_image(upload.stream, limit, upload.filename)


def file_bytes(name: str, limit: int, what: str) -> bytes | None:
    """A small uploaded file's bytes (a bundle); None when absent; 413 past `limit`."""
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        return None
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(PAYLOAD_TOO_LARGE, f"a {what} is at most {limit} bytes")
    return data
