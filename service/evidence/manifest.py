"""The manifest (v1): what a receipt attests, serialised with RFC 8785 (JCS) and hashed.

Hashed bytes: manifest digest = SHA-256(JCS(manifest)). The JCS bytes are stored and shipped as
the bundle's manifest.json unchanged, so anyone can recompute the digest with `sha256sum` without
a JCS implementation; JCS only makes the serialisation reproducible from the parsed object.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from service.errors import MalformedInputError, MetadataError

MANIFEST_VERSION = 1
MAX_METADATA_BYTES = 64 * 1024  # records are a few KiB; bounds DB rows, bundles and hashing work
MAX_JSON_DEPTH = 32  # real records nest 3-4 deep; keeps JCS's recursive encoder far from limits
MAX_EXTERNAL_ID_CHARS = 256  # a caller's own id (URL, UUID, post id), not a document
# The manifest wraps the record (raw + normalised copies) and a publication record of its own.
MAX_MANIFEST_BYTES = 3 * MAX_METADATA_BYTES + 4096
_MANIFEST_NESTING = 3  # manifest -> generation -> raw -> the caller's record
SAFE_INTEGER = 2**53 - 1  # RFC 8785 3.2.2.3 / I-JSON: larger integers lose precision as doubles
# JCS writes doubles below 1e21 without an exponent, so one above SAFE_INTEGER reads back as an
# integer that is not exact: such numbers are refused like the integers they turn into.
_EXPONENT_FROM = 1e21
_LAST_BEFORE_SURROGATES = "\ud7ff"  # key characters up to here sort alike in UTF-8 and UTF-16

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")


@dataclass(frozen=True)
class Manifest:
    """A manifest as object, as the exact bytes hashed, and their SHA-256."""

    obj: dict[str, Any]
    jcs: bytes
    digest: bytes


def build_manifest(
    *,
    image_sha256: str,
    size: int | None,
    media_type: str | None,
    generation: Mapping[str, Any],
    submitted_at: datetime,
    external_id: str | None,
    publication: Mapping[str, Any] | None = None,
    session: str | None = None,
    parents: Sequence[Mapping[str, str]] = (),
) -> Manifest:
    """Assemble, bound and canonicalise a v1 manifest; MetadataError says what is out of bounds.

    `session` and `parents` (the iteration history, usecases.lineage) appear only when given,
    so manifests made before them read and verify unchanged."""
    digest_hex = image_sha256.lower()
    if not _SHA256_HEX.fullmatch(digest_hex):
        raise MalformedInputError("image sha256 must be 64 hexadecimal characters")
    image: dict[str, Any] = {"sha256": digest_hex}
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= SAFE_INTEGER:
            raise MetadataError("image size must be a non-negative integer")
        image["size"] = size
    if media_type is not None:
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise MetadataError("media type must look like type/subtype")
        image["media_type"] = media_type
    obj: dict[str, Any] = {
        "v": MANIFEST_VERSION,
        "image": image,
        "generation": dict(generation),
        "submitted_at": format_timestamp(submitted_at),
    }
    if external_id is not None:
        if not isinstance(external_id, str) or not 0 < len(external_id) <= MAX_EXTERNAL_ID_CHARS:
            raise MetadataError(f"external_id must be 1..{MAX_EXTERNAL_ID_CHARS} characters")
        obj["external_id"] = external_id
    if publication is not None:
        canonicalize(publication, max_bytes=MAX_METADATA_BYTES, what="publication")
        obj["publication"] = dict(publication)
    if session is not None:
        obj["session"] = session
    if parents:
        obj["parents"] = [dict(p) for p in parents]
    jcs = canonicalize(obj, max_depth=MAX_JSON_DEPTH + _MANIFEST_NESTING)
    return Manifest(obj=obj, jcs=jcs, digest=manifest_digest(jcs))


def canonicalize(
    obj: Any,
    *,
    max_bytes: int = MAX_MANIFEST_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    what: str = "manifest",
) -> bytes:
    """RFC 8785 bytes of `obj`, after checking it is JSON that JCS represents exactly."""
    if _checked_value(obj, max_depth, what):
        try:
            # json's C encoder writes exactly JCS for what _checked_value let through, at a
            # tenth of rfc8785's (pure Python) cost: it was 4% of an upload's CPU, and a batch
            # of 1,000 registrations builds 1,000 manifests. A lone surrogate fails the
            # encoding and goes to rfc8785 below, which names it.
            jcs = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                             check_circular=False, allow_nan=False).encode()
        except UnicodeEncodeError:
            pass
        else:
            if len(jcs) > max_bytes:
                raise MetadataError(f"{what} is larger than {max_bytes} bytes as JSON")
            return jcs
    sink = _BoundedSink(max_bytes, what)
    try:
        rfc8785.dump(obj, sink)
    except rfc8785.CanonicalizationError as exc:  # e.g. lone surrogates in a string
        raise MetadataError(f"{what}: {exc}") from exc
    return sink.getvalue()


def manifest_digest(jcs: bytes) -> bytes:
    """SHA-256 of the exact manifest bytes: the value the Merkle leaf commits to."""
    return hashlib.sha256(jcs).digest()


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with 'Z' and milliseconds, e.g. 2026-01-27T10:11:12.345Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("submitted_at must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_json_value(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, what: str = "metadata"
) -> None:
    """Raise MetadataError unless `value` is JSON (str keys) that JCS can represent exactly.

    Iterative, so hostile nesting cannot exhaust the Python stack; a depth limit also stops
    self-referencing containers.
    """
    _checked_value(value, max_depth, what)


def _checked_value(value: Any, max_depth: int, what: str) -> bool:
    """check_json_value; True when json.dumps (sorted keys, no spaces, no ASCII escaping) writes
    `value` exactly as RFC 8785 does. It differs only in two places: numbers that are not
    integers, where JSON and JCS agree on the digits of non-integral doubles written without an
    exponent (Python's repr and ECMAScript's both give the shortest round-trip digits) but not
    on 7.0 ("7.0" against "7") or on exponents ("1e-05" against "0.00001"); and key order,
    by code point against JCS's UTF-16 code units, which differ only for characters above
    U+D7FF."""
    plain = True
    stack: list[tuple[Any, int, str]] = [(value, 1, what)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list | tuple) and depth > max_depth:
            raise MetadataError(f"{path}: nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise MetadataError(f"{path}: object keys must be strings")
                if plain and not key.isascii() and max(key) > _LAST_BEFORE_SURROGATES:
                    plain = False
                stack.append((child, depth + 1, f"{path}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if not -SAFE_INTEGER <= item <= SAFE_INTEGER:
                raise MetadataError(
                    f"{path}: integers beyond ±(2^53-1) are not exact in JSON; send it as a string"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise MetadataError(f"{path}: NaN and Infinity are not JSON numbers")
            if SAFE_INTEGER < abs(item) < _EXPONENT_FROM:
                raise MetadataError(
                    f"{path}: numbers beyond ±(2^53-1) are not exact in JSON; send it as a string"
                )
            if plain and (item.is_integer() or "e" in repr(item)):
                plain = False
        else:
            raise MetadataError(f"{path}: {type(item).__name__} is not a JSON value")
    return plain


class _BoundedSink(io.BytesIO):
    """A byte sink that refuses to grow past a limit, so oversized input stops early."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__()
        self._limit = limit
        self._what = what

    def write(self, data: Any, /) -> int:
        if self.tell() + len(data) > self._limit:
            raise MetadataError(f"{self._what} is larger than {self._limit} bytes as JSON")
        return super().write(data)
