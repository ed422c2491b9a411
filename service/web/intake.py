"""Read POST /v1/stamps into a `Registration`: multipart with an image, or JSON with a digest.

Only parsing and field checks live here (HTTP in); probing the image, reading its record, the
manifest and the receipt are the register use case's (service.usecases.register).
"""

from __future__ import annotations

import json
import re
from typing import IO, Any, BinaryIO, cast
from urllib.parse import urlsplit

from flask import Request

from service.usecases.lineage import LINEAGE_FIELDS, read_lineage
from service.usecases.register import (
    MAX_EXTERNAL_ID,
    MAX_IDEMPOTENCY_KEY_CHARS,
    Registration,
    SpooledImage,
)
from service.web.multipart import StreamedForm, parse_form
from service.web.problems import (
    INVALID_CALLBACK_URL,
    INVALID_DIGEST,
    INVALID_FIELD,
    INVALID_METADATA,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    URL_REFUSED,
    ApiError,
)

MAX_JSON_BODY_BYTES = 512 * 1024  # a digest and a generation record; far below an image upload
FORM_OVERHEAD_BYTES = 1024 * 1024  # multipart framing plus the text fields, on top of the image
MAX_CALLBACK_URL_CHARS = 2048  # the de facto URL limit of browsers and proxies
IMAGE_FIELD = "image"
FORM_FIELDS = frozenset({"metadata", "callback_url", "external_id", "public"}) | LINEAGE_FIELDS
JSON_FIELDS = (frozenset({"sha256", "metadata", "callback_url", "external_id", "public",
                          "record"}) | LINEAGE_FIELDS)
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}")  # visible ASCII


def read_registration(request: Request, limit: int, owner: str) -> Registration:
    """Parse and check the request body for key `owner`; ApiError (problem+json) otherwise.

    The caller closes the registration's image (a spool that may be a temporary file)."""
    if request.mimetype == "multipart/form-data":
        reg = _from_form(request, limit)
    elif request.mimetype == "application/json":
        reg = _from_json(request)
    else:
        raise ApiError(UNSUPPORTED_MEDIA_TYPE, "Send multipart/form-data or application/json")
    reg.owner = owner
    reg.idempotency_key = idempotency_key(request)
    return reg


def idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key header, checked; None when absent."""
    value = request.headers.get("Idempotency-Key")
    return None if value is None else check_idempotency_key(value)


def _from_form(request: Request, limit: int) -> Registration:
    form = read_form(request, limit, FORM_FIELDS)
    try:
        if form.file is None or form.spool is None:
            raise ApiError(INVALID_FIELD, f"the {IMAGE_FIELD!r} file part is required")
        fields = form.fields
        return Registration(
            owner="",
            metadata=_metadata_from_text(fields.get("metadata")),
            external_id=_external_id(fields.get("external_id")),
            callback_url=_callback_url(fields.get("callback_url")),
            public=_form_bool(fields.get("public")),
            lineage=read_lineage(fields, text=True),
            image=SpooledImage(cast(BinaryIO, _handed_over(form)), form.file, form.filename),
        )
    finally:
        form.close()


def read_form(request: Request, limit: int, text_fields: frozenset[str]) -> StreamedForm:
    """The multipart body with its IMAGE_FIELD file hashed into a spool (closed by the caller)."""
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ApiError(INVALID_FIELD, "multipart/form-data without a boundary")
    return parse_form(request.stream, boundary.encode("latin-1"), file_field=IMAGE_FIELD,
                      text_fields=text_fields, limit=limit)


def _handed_over(form: StreamedForm) -> IO[bytes]:
    """Take the spool out of the form (so form.close() leaves it open), rewound."""
    spool = form.spool
    assert spool is not None
    form.spool = None
    spool.seek(0)
    return spool


def read_json_body(request: Request, limit: int, empty: Any = None) -> Any:
    """The request body parsed as JSON, at most `limit` bytes; ApiError otherwise.

    An empty body is `empty` when that is given (a POST whose fields are all optional)."""
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(PAYLOAD_TOO_LARGE, f"JSON bodies are limited to {limit} bytes")
    if not body and empty is not None:
        return empty
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(INVALID_FIELD, "the body is not valid JSON") from exc


def _from_json(request: Request) -> Registration:
    return registration_from_json(read_json_body(request, MAX_JSON_BODY_BYTES))


def registration_from_json(data: Any, extra_fields: frozenset[str] = frozenset()
                           ) -> Registration:
    """One digest registration from its JSON object: the body of POST /v1/stamps, or one item
    of POST /v1/stamps/batch (which also allows `extra_fields`, read by its caller)."""
    if not isinstance(data, dict):
        raise ApiError(INVALID_FIELD, "the body must be a JSON object")
    unknown = sorted(set(data) - JSON_FIELDS - extra_fields)
    if unknown:
        raise ApiError(INVALID_FIELD, f"unknown field(s): {', '.join(unknown)}")
    digest = data.get("sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise ApiError(INVALID_DIGEST)
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError(INVALID_METADATA)
    record = data.get("record")
    if "record" in data and not isinstance(record, dict):
        raise ApiError(INVALID_METADATA, "record must be a JSON object (the record read from "
                       "the file), or omitted")
    public = data.get("public", False)
    if not isinstance(public, bool):
        raise ApiError(INVALID_FIELD, "public must be true or false")
    for name in ("external_id", "callback_url"):  # strings or absent, as the OpenAPI says
        if name in data and data[name] is None:
            raise ApiError(INVALID_FIELD, f"{name} must be a string; omit it for none")
    return Registration(
        owner="",
        sha256=digest.lower(),
        metadata=metadata,
        external_id=_external_id(data.get("external_id")),
        callback_url=_callback_url(data.get("callback_url")),
        public=public,
        file_record=record,
        lineage=read_lineage(data),
    )


def check_idempotency_key(value: Any) -> str:
    """An Idempotency-Key (header or batch item field), checked."""
    if not isinstance(value, str) or not _IDEMPOTENCY_KEY.fullmatch(value):
        raise ApiError(
            INVALID_FIELD,
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters",
        )
    return value


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
    if parts.scheme and parts.scheme.lower() not in ("http", "https") and parts.netloc + parts.path:
        # A well-formed URL of another scheme (ftp:, file:, gopher:, javascript:): the SSRF
        # guard's refusal, as for a forbidden address; a malformed one stays invalid.
        raise ApiError(URL_REFUSED, "callback_url must be http or https")
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
