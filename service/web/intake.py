"""Read POST /v1/stamps into a `Submission`: multipart with an image, or JSON with a digest.

Only parsing and field checks live here (HTTP in); the manifest and the receipt are made by
stamps.py through the evidence and storage packages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

from flask import Request

from service.evidence.hashing import BOMB, UNDECODABLE, probe_image, sniff_media_type
from service.evidence.manifest import MAX_EXTERNAL_ID_CHARS
from service.evidence.records import ExtractedRecord, read_generation_record
from service.storage.tables import IDEMPOTENCY_KEY_LENGTH, NAME_LENGTH
from service.web.multipart import FieldTooLargeError, FormError, StreamedForm, parse_form
from service.web.problems import (
    INVALID_CALLBACK_URL,
    INVALID_DIGEST,
    INVALID_FIELD,
    INVALID_METADATA,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
)

MAX_JSON_BODY_BYTES = 512 * 1024  # a digest and a generation record; far below an image upload
FORM_OVERHEAD_BYTES = 1024 * 1024  # multipart framing plus the text fields, on top of the image
MAX_CALLBACK_URL_CHARS = 2048  # the de facto URL limit of browsers and proxies
# The manifest allows longer external ids than the column holds; the column decides.
MAX_EXTERNAL_ID = min(MAX_EXTERNAL_ID_CHARS, NAME_LENGTH)
IMAGE_FIELD = "image"
RECORD_WARNING = "generation record: "  # prefixes the reader's warnings
FORM_FIELDS = frozenset({"metadata", "callback_url", "external_id", "public"})
JSON_FIELDS = frozenset({"sha256", "metadata", "callback_url", "external_id", "public"})
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_LENGTH}}}")  # visible ASCII


@dataclass
class Submission:
    """What a client asked to register: the image (or its digest) and the request fields."""

    sha256: str
    size: int | None
    media_type: str | None
    metadata: dict[str, Any]
    external_id: str | None = None
    callback_url: str | None = None
    public: bool = False
    image_name: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The generation record embedded in the uploaded file (None for digest-only uploads).
    record: ExtractedRecord | None = None
    # The spooled upload when Pillow can read it, kept for the perceptual-hashing job; the
    # caller owns it from here (close()).
    image_file: IO[bytes] | None = None

    def close(self) -> None:
        """Release the spooled upload (a temporary file once it outgrew memory)."""
        if self.image_file is not None:
            self.image_file.close()


def read_submission(request: Request, limit: int) -> Submission:
    """Parse and check the request body; ApiError (problem+json) for anything unacceptable."""
    if request.mimetype == "multipart/form-data":
        return _from_form(request, limit)
    if request.mimetype == "application/json":
        return _from_json(request)
    raise ApiError(UNSUPPORTED_MEDIA_TYPE, "Send multipart/form-data or application/json")


def idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key header, checked; None when absent."""
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise ApiError(
            INVALID_FIELD,
            f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_LENGTH} visible ASCII characters",
        )
    return value


def _from_form(request: Request, limit: int) -> Submission:
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ApiError(INVALID_FIELD, "multipart/form-data without a boundary")
    try:
        form = parse_form(
            request.stream, boundary.encode("latin-1"), file_field=IMAGE_FIELD,
            text_fields=FORM_FIELDS, limit=limit,
        )
    except FieldTooLargeError as exc:
        raise ApiError(PAYLOAD_TOO_LARGE, str(exc)) from exc
    except FormError as exc:
        raise ApiError(INVALID_FIELD, str(exc)) from exc
    try:
        if form.file is None or form.spool is None:
            raise ApiError(INVALID_FIELD, f"the {IMAGE_FIELD!r} file part is required")
        fields = form.fields
        metadata = _metadata_from_text(fields.get("metadata"))
        probe = probe_image(form.spool)  # type: ignore[arg-type]
        record = read_generation_record(form.spool)  # type: ignore[arg-type]
        decodable = not {UNDECODABLE, BOMB} & set(probe.warnings)
        return Submission(
            sha256=form.file.sha256.hex(),
            size=form.file.size,
            media_type=sniff_media_type(form.file.head),
            metadata=metadata,
            external_id=_external_id(fields.get("external_id")),
            callback_url=_callback_url(fields.get("callback_url")),
            public=_form_bool(fields.get("public")),
            image_name=form.filename,
            warnings=[*probe.warnings, *(RECORD_WARNING + w for w in record.warnings)],
            record=record,
            image_file=_handed_over(form) if decodable else None,
        )
    finally:
        form.close()


def _handed_over(form: StreamedForm) -> IO[bytes]:
    """Take the spool out of the form (so form.close() leaves it open), rewound."""
    spool = form.spool
    assert spool is not None
    form.spool = None
    spool.seek(0)
    return spool


def read_json_body(request: Request, limit: int) -> Any:
    """The request body parsed as JSON, at most `limit` bytes; ApiError otherwise."""
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(PAYLOAD_TOO_LARGE, f"JSON bodies are limited to {limit} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(INVALID_FIELD, "the body is not valid JSON") from exc


def _from_json(request: Request) -> Submission:
    data = read_json_body(request, MAX_JSON_BODY_BYTES)
    if not isinstance(data, dict):
        raise ApiError(INVALID_FIELD, "the body must be a JSON object")
    unknown = sorted(set(data) - JSON_FIELDS)
    if unknown:
        raise ApiError(INVALID_FIELD, f"unknown field(s): {', '.join(unknown)}")
    digest = data.get("sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise ApiError(INVALID_DIGEST)
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError(INVALID_METADATA)
    public = data.get("public", False)
    if not isinstance(public, bool):
        raise ApiError(INVALID_FIELD, "public must be true or false")
    return Submission(
        sha256=digest.lower(),
        size=None,
        media_type=None,
        metadata=metadata,
        external_id=_external_id(data.get("external_id")),
        callback_url=_callback_url(data.get("callback_url")),
        public=public,
    )


def _metadata_from_text(text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ApiError(INVALID_METADATA, "metadata is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ApiError(INVALID_METADATA)
    return value


def _external_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_EXTERNAL_ID:
        raise ApiError(INVALID_FIELD, f"external_id must be a string of 1..{MAX_EXTERNAL_ID} chars")
    return value


def _callback_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_CALLBACK_URL_CHARS:
        raise ApiError(INVALID_CALLBACK_URL, f"at most {MAX_CALLBACK_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ApiError(INVALID_CALLBACK_URL) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or value != value.strip():
        raise ApiError(INVALID_CALLBACK_URL)
    return value


def _form_bool(value: str | None) -> bool:
    if value is None:
        return False
    folded = value.strip().lower()
    if folded in ("true", "1", "yes", "on"):
        return True
    if folded in ("false", "0", "no", "off", ""):
        return False
    raise ApiError(INVALID_FIELD, "public must be true or false")
