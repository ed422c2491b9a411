"""ExtractedRecord: what an image file says about how it was made, normalised and bounded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.evidence.generation import normalize_fields
from service.evidence.manifest import SAFE_INTEGER
from service.evidence.records.limits import (
    MAX_FIELD_CHARS,
    MAX_JSON_DEPTH,
    MAX_RAW_FIELD_CHARS,
    MAX_RAW_FIELDS,
    MAX_RAW_TOTAL_CHARS,
    RAW_HEAD_CHARS,
)

# JSON text may escape lone surrogates ("\\ud800"); JCS cannot encode them: they become U+FFFD.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# Formats named in `source`; "request" (generation.py) is the caller's own record; "unknown" a
# tool's chunk (e.g. `parameters`) that could not be read, kept raw.
A1111, COMFYUI, INVOKEAI, NOVELAI, FOOOCUS, XMP, C2PA, UNKNOWN = (
    "a1111", "comfyui", "invokeai", "novelai", "fooocus", "xmp", "c2pa", "unknown")
SWARMUI, DRAWTHINGS, EASYDIFFUSION, MIDJOURNEY, TENSORART = (
    "swarmui", "drawthings", "easydiffusion", "midjourney", "tensorart")


@dataclass(frozen=True)
class ExtractedRecord:
    """The generation record embedded in an image file.

    `source` names the format (A1111...MIDJOURNEY above), None when the file has none; `fields` are
    the normalised GENERATION_FIELDS; `raw` every original text field by chunk keyword or tag
    name (bounded: see `bound_raw`); `details` parsed extras outside the vocabulary (LoRAs,
    hires, scheduler); `provenance` XMP/IPTC and C2PA facts; `warnings` what could not be read.
    """

    source: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    container: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.source is not None

    def as_generation(self) -> dict[str, Any]:
        """The record in the manifest's `generation` shape: fields, source, raw (+ extras)."""
        out: dict[str, Any] = {**self.fields, "source": self.source, "raw": dict(self.raw)}
        if self.details:
            out["details"] = dict(self.details)
        if self.provenance:
            out["provenance"] = dict(self.provenance)
        return out


def normalise(fields: Mapping[str, Any], warnings: list[str]) -> dict[str, Any]:
    """normalize_fields over a format's fields, with text fields cut to MAX_FIELD_CHARS."""
    out = normalize_fields({k: jsonable(v) for k, v in fields.items() if v is not None})
    for name, value in out.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            out[name] = value[:MAX_FIELD_CHARS]
            warnings.append(f"{name} longer than {MAX_FIELD_CHARS} characters; cut (raw keeps it)")
    return out


def bound_raw(raw: Mapping[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Raw texts, each over MAX_RAW_FIELD_CHARS (and the largest while the total is over
    MAX_RAW_TOTAL_CHARS) replaced by {"truncated", "chars", "sha256" of its UTF-8, "head"}."""
    keys = list(raw)[:MAX_RAW_FIELDS]
    if len(raw) > MAX_RAW_FIELDS:
        warnings.append(f"{len(raw) - MAX_RAW_FIELDS} raw fields beyond {MAX_RAW_FIELDS} left out")
    out = {key: jsonable(raw[key]) for key in keys}
    sizes = {k: len(v if isinstance(v, str) else str(v)) for k, v in out.items()}
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        over_total = sum(sizes.values()) > MAX_RAW_TOTAL_CHARS
        if sizes[key] <= RAW_HEAD_CHARS * 2 or (
            sizes[key] <= MAX_RAW_FIELD_CHARS and not over_total
        ):
            break
        text = out[key] if isinstance(out[key], str) else str(out[key])
        out[key] = {"truncated": True, "chars": len(text), "head": text[:RAW_HEAD_CHARS],
                    "sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()}
        sizes[key] = RAW_HEAD_CHARS + 100
        warnings.append(f"raw {key!r} of {len(text)} characters kept as head and SHA-256")
    return out


def jsonable(value: Any, depth: int = 0) -> Any:
    """A copy that JCS represents exactly: big integers as strings, other types as text."""
    if depth > MAX_JSON_DEPTH:
        return None
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if abs(value) <= SAFE_INTEGER else str(value)  # also NaN/inf -> text
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)
