"""Generation records: how an image says it was made, normalised to one vocabulary.

Tools name the same facts differently (A1111 "CFG scale", ComfyUI "cfg", diffusers
"guidance_scale"). The manifest keeps the caller's record untouched under `raw` and adds the
normalised fields beside it, so nothing stated is lost and searches need not know every dialect.
`normalize_fields` is source-agnostic: a reader for records embedded in image files (A1111
"parameters", ComfyUI, C2PA...) feeds it too and sets its own `source`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import MetadataError
from service.evidence.manifest import (
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    SAFE_INTEGER,
    canonicalize,
    check_json_value,
)

SOURCE_REQUEST = "request"

# Normalised field -> accepted key spellings, best first. Keys are compared folded: lower case
# with everything but letters and digits removed ("CFG scale", "cfg-scale", "cfgScale" -> cfgscale).
ALIASES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "positiveprompt", "positive"),
    "negative_prompt": ("negativeprompt", "negative", "negprompt", "uc"),
    "model": ("model", "modelname", "ckpt", "ckptname", "checkpoint", "sdmodelcheckpoint"),
    "model_hash": ("modelhash", "sdmodelhash", "ckpthash", "checkpointhash"),
    "seed": ("seed", "noiseseed"),
    "sampler": ("sampler", "samplername"),
    "steps": ("steps", "numinferencesteps", "samplingsteps"),
    "cfg_scale": ("cfgscale", "cfg", "guidancescale", "scale"),  # Flux "guidance" is not CFG
    "width": ("width", "imagewidth"),
    "height": ("height", "imageheight"),
    "software": ("software", "generator", "generatedby"),
}
SIZE_ALIASES = ("size", "imagesize", "resolution")  # A1111 writes "Size: 512x768"
GENERATION_FIELDS = tuple(ALIASES)

_FOLD = re.compile(r"[^0-9a-z]+")
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SIZE = re.compile(r"\s*([0-9]{1,6})\s*[x×X]\s*([0-9]{1,6})\s*")


def normalize_request_metadata(
    metadata: Mapping[str, Any],
    read: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `generation` object for a manifest from the request's `metadata` JSON object.

    `read`: finds fields inside the (bounds-checked) metadata, such as a ComfyUI graph's
    sampler values; they are normalised under the request's own flat fields. Raises
    MetadataError when the record is not a bounded, JCS-representable JSON object.
    """
    if not isinstance(metadata, Mapping):
        raise MetadataError("metadata must be a JSON object")
    canonicalize(metadata, max_bytes=MAX_METADATA_BYTES, max_depth=MAX_JSON_DEPTH, what="metadata")
    raw = copy.deepcopy(dict(metadata))
    found = read(raw) if read is not None else {}
    return {**normalize_fields(found), **normalize_fields(raw), "raw": raw,
            "source": SOURCE_REQUEST}


# A record the submitter's client read from the image (digest-only registrations): its format
# name is a short identifier (service/evidence/records/record.py names them).
READ_BY_CLIENT = "client"
_FORMAT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
CLIENT_RECORD_EXTRAS = ("details", "provenance")


def normalize_client_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The file's `generation` from a record the client read from the file (`--hash-only`):
    the shape of a record read by the server (fields, `source`, `raw`, `details`,
    `provenance`) plus `read_by: "client"`, since the server never saw the bytes.

    Raises MetadataError when the record is not a bounded JSON object naming its format.
    """
    if not isinstance(record, Mapping):
        raise MetadataError("record must be a JSON object")
    _check_bounded(record, "record")
    source = record.get("source")
    if not isinstance(source, str) or not _FORMAT_NAME.fullmatch(source):
        raise MetadataError("record.source must name the record's format (a short identifier)")
    raw = record.get("raw", {})
    if not isinstance(raw, Mapping):
        raise MetadataError("record.raw must be a JSON object")
    fields = {k: v for k, v in record.items() if k in ALIASES}
    out: dict[str, Any] = {**normalize_fields(fields), "source": source,
                           "raw": copy.deepcopy(dict(raw)), "read_by": READ_BY_CLIENT}
    for extra in CLIENT_RECORD_EXTRAS:
        if extra not in record:
            continue
        value = record[extra]
        if not isinstance(value, Mapping):
            raise MetadataError(f"record.{extra} must be a JSON object")
        out[extra] = copy.deepcopy(dict(value))
    return out


def _check_bounded(value: Mapping[str, Any], what: str) -> None:
    """What canonicalize checks (JSON that JCS represents exactly, at most MAX_METADATA_BYTES),
    with the C encoder for the size: a batch checks a thousand records, and the manifest that
    is built next is JCS-encoded (and bounded) anyway."""
    check_json_value(value, max_depth=MAX_JSON_DEPTH, what=what)
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8, no JCS
        raise MetadataError(f"{what}: a string is not valid Unicode") from exc
    if size > MAX_METADATA_BYTES:
        raise MetadataError(f"{what} is larger than {MAX_METADATA_BYTES} bytes as JSON")


def merge_generation(
    request: Mapping[str, Any], file: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The manifest's `generation` from the request's record and the one read from the file.

    Without a file record it is the request's, unchanged. With one, each normalised field is the
    file's value (it travels inside the hashed bytes), else the request's; `source` names the
    file's format; `sources` holds each origin's normalised fields (the file's with its
    `details`/`provenance`); `raw` is {"file": ..., "request": ...}; `conflicts` lists the fields
    both state differently, with both values. The request's part is left out when it is empty.
    """
    if file is None:
        return dict(request)
    stated = bool(request.get("raw"))
    merged: dict[str, Any] = {}
    conflicts: list[dict[str, Any]] = []
    for name in GENERATION_FIELDS:
        ours, theirs = file.get(name), request.get(name) if stated else None
        if ours is not None or theirs is not None:
            merged[name] = ours if ours is not None else theirs
        if ours is not None and theirs is not None and not same_value(ours, theirs):
            conflicts.append({"field": name, "file": ours, "request": theirs})
    sources = {"file": _without_raw(file)}
    raw = {"file": file.get("raw", {})}
    if stated:
        sources["request"] = _without_raw(request)
        raw["request"] = request["raw"]
    return {**merged, "source": file.get("source"), "sources": sources, "raw": raw,
            "conflicts": conflicts}


def _without_raw(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "raw"}


def same_value(a: Any, b: Any) -> bool:
    """Two stated values agree: text up to surrounding space, numbers by value."""
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)  # a seed as int on one side, as text on the other


def normalize_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Map a flat record's keys onto GENERATION_FIELDS; only fields with a usable value appear."""
    by_fold: dict[str, list[str]] = {}
    for key in fields:
        by_fold.setdefault(_FOLD.sub("", key.lower()), []).append(key)
    for keys in by_fold.values():
        keys.sort(key=lambda k: (k != k.lower(), k))  # "seed" before "Seed": deterministic

    def first(aliases: tuple[str, ...], coerce: Callable[[Any], Any]) -> Any:
        for alias in aliases:
            for key in by_fold.get(alias, ()):
                value = coerce(fields[key])
                if value is not None:
                    return value
        return None

    out: dict[str, Any] = {}
    for name, aliases in ALIASES.items():
        value = first(aliases, _COERCE[name])
        if value is not None:
            out[name] = value
    size = first(SIZE_ALIASES, _size)
    if size is not None:
        out.setdefault("width", size[0])
        out.setdefault("height", size[1])
    return out


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _seed(value: Any) -> int | str | None:
    """Seeds stay exact: 64-bit seeds (ComfyUI) beyond 2^53 are kept as decimal strings."""
    number = _integer(value)
    if number is None:
        return None
    return number if -SAFE_INTEGER <= number <= SAFE_INTEGER else str(number)


def _count(value: Any) -> int | None:
    number = _integer(value)
    return number if number is not None and 0 < number <= SAFE_INTEGER else None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number: float = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        return None
    return number if math.isfinite(number) and abs(number) <= SAFE_INTEGER else None


def _size(value: Any) -> tuple[int, int] | None:
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None or not int(match[1]) or not int(match[2]):
        return None
    return int(match[1]), int(match[2])


_COERCE: dict[str, Callable[[Any], Any]] = {
    "prompt": _text,
    "negative_prompt": _text,
    "model": _text,
    "model_hash": _text,
    "seed": _seed,
    "sampler": _text,
    "steps": _count,
    "cfg_scale": _number,
    "width": _count,
    "height": _count,
    "software": _text,
}


ORIGIN_FILE = "read from the image file"
ORIGIN_REQUEST = "stated by the submitter"


@dataclass(frozen=True)
class RecordField:
    """One normalised field of a record: its value, whether the image file carries it (inside
    the timestamped bytes) or the submitter only stated it, and what the submitter stated
    otherwise when both disagree."""

    name: str
    value: Any
    from_file: bool
    file_format: str | None = None
    stated_otherwise: Any = None  # the request's differing value (conflicts), else None


def record_fields(generation: Mapping[str, Any]) -> list[RecordField]:
    """The normalised fields of a manifest's `generation` present in it, in the vocabulary's
    order, each with where its value came from."""
    sources = generation.get("sources")
    from_file = sources.get("file", {}) if isinstance(sources, Mapping) else {}
    file_format = generation.get("source") if from_file else None
    conflicts = {c.get("field"): c.get("request") for c in generation.get("conflicts") or ()
                 if isinstance(c, Mapping)}
    rows = []
    for name in GENERATION_FIELDS:
        value = generation.get(name)
        if value is None:
            continue
        in_file = isinstance(from_file, Mapping) and from_file.get(name) is not None
        rows.append(RecordField(name, value, in_file, file_format if in_file else None,
                                conflicts.get(name)))
    return rows


def record_rows(generation: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """(field, value, origin) for each normalised field of a manifest's `generation`, in the
    vocabulary's order: where the value came from, and what the submitter stated otherwise.

    Readers (a judge, `chronoseal verify`, the certificate) must tell a value the file carries
    inside the timestamped bytes from one the submitter only claimed."""
    rows = []
    for f in record_fields(generation):
        if f.from_file:
            origin = f"{ORIGIN_FILE} ({f.file_format})" if f.file_format else ORIGIN_FILE
            if f.stated_otherwise is not None:
                origin += f"; the submitter stated {f.stated_otherwise!r}"
        else:
            origin = ORIGIN_REQUEST
        rows.append((f.name, f.value, origin))
    return rows
