"""read_generation_record: find which tool's record an image file carries, and read it."""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from typing import Any, BinaryIO

from service.evidence.records import a1111, c2pa, comfyui, fooocus, invokeai, novelai, xmp
from service.evidence.records.containers import Embedded, read_embedded
from service.evidence.records.jsontext import is_json_object_text, parse_json
from service.evidence.records.limits import MAX_WARNINGS
from service.evidence.records.record import (
    A1111,
    C2PA,
    COMFYUI,
    FOOOCUS,
    INVOKEAI,
    NOVELAI,
    UNKNOWN,
    XMP,
    ExtractedRecord,
    bound_raw,
    jsonable,
    normalise,
)

log = logging.getLogger(__name__)
UNREADABLE = "the embedded generation record could not be read; registered without it"
UNRECOGNISED = "the embedded generation record is in no format known here; kept raw"
Parsed = tuple[str, dict[str, Any], dict[str, Any]]  # source, fields, details
# Keys only generating tools write: when one is present but unreadable, it is kept raw.
RECORD_KEYS = frozenset({"parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata"})


def read_generation_record(path_or_fileobj: str | os.PathLike[str] | BinaryIO) -> ExtractedRecord:
    """The generation record embedded in a PNG, JPEG or WebP file; never raises for bad bytes.

    A file object is read from its start and left at its start. Pure: reads only the file.
    """
    with ExitStack() as stack:
        if isinstance(path_or_fileobj, str | os.PathLike):
            fileobj: BinaryIO = stack.enter_context(open(path_or_fileobj, "rb"))  # noqa: SIM115
        else:
            fileobj = path_or_fileobj
        try:
            fileobj.seek(0)
            embedded = read_embedded(fileobj)
            return _interpret(embedded)
        except Exception:  # a reader bug on hostile bytes must not fail an upload
            log.warning("generation record reader failed", exc_info=True)
            return ExtractedRecord(warnings=(UNREADABLE,))
        finally:
            fileobj.seek(0)


def _interpret(embedded: Embedded) -> ExtractedRecord:
    warnings = embedded.warnings
    texts = embedded.texts
    provenance: dict[str, Any] = {}
    raw: dict[str, Any] = dict(texts)
    raw.update(embedded.skipped)
    if embedded.xmp:
        props = xmp.read_xmp(embedded.xmp, warnings)
        if props:
            raw["XMP"] = props
            provenance["xmp"] = props
    if embedded.iptc:
        raw["IPTC"] = provenance["iptc"] = embedded.iptc
    if embedded.c2pa:
        provenance["c2pa"] = c2pa.read_c2pa(embedded.c2pa)
    parsed = _parse_texts(_with_exif_graphs(texts), warnings)
    if parsed is None and "xmp" in provenance and xmp.is_ai_generated(provenance["xmp"]):
        props = provenance["xmp"]
        parsed = (XMP, {"prompt": props.get("description"),
                        "software": props.get("creator_tool")}, {})
    if parsed is None and "c2pa" in provenance:
        parsed = (C2PA, {}, {})
    if parsed is None and RECORD_KEYS.intersection(raw):
        # A tool's record in no known layout (or broken): kept raw, bounded; flat text chunks
        # that name fields ("prompt": "a fox", "Steps": "20") still count, JSON does not.
        flat = {k: v for k, v in texts.items() if v.lstrip()[:1] not in ("{", "[")}
        parsed = (UNKNOWN, flat, {})
        warnings.append(UNRECOGNISED)
    if parsed is None:
        return ExtractedRecord(container=embedded.container, warnings=_cap(warnings))
    source, fields, details = parsed
    if not fields.get("software"):
        fields["software"] = _software_hint(provenance)
    return ExtractedRecord(
        source=source,
        fields=normalise(fields, warnings),
        raw=bound_raw(raw, warnings),
        details=jsonable(details),
        provenance=jsonable(provenance),
        container=embedded.container,
        warnings=_cap(warnings),
    )


def _parse_texts(texts: dict[str, str], warnings: list[str]) -> Parsed | None:
    """The first format whose chunks are present, in order of how specific their keys are."""
    if "prompt" in texts or "workflow" in texts:
        found = _comfyui(texts, warnings)
        if found is not None:
            return found
    for key, read in (("invokeai_metadata", invokeai.read_metadata),
                      ("sd-metadata", invokeai.read_sd_metadata)):
        if key in texts:
            meta = parse_json(texts[key], key, warnings)
            if isinstance(meta, dict):
                return (INVOKEAI, *read(meta))
    if novelai.is_novelai(texts):
        comment = texts.get("Comment")
        meta = parse_json(comment, "Comment", warnings) if comment is not None else None
        return (NOVELAI, *novelai.read_record(texts, meta))
    for key in ("parameters", "UserComment"):
        text = texts.get(key)
        if text is None:
            continue
        scheme = texts.get(fooocus.SCHEME_KEY, texts.get("MakerNote", ""))
        if is_json_object_text(text):
            meta = parse_json(text, key, warnings)
            if fooocus.is_fooocus_json(meta) or (scheme == "fooocus" and isinstance(meta, dict)):
                return (FOOOCUS, *fooocus.read_record(meta))
        elif a1111.looks_like_infotext(text):
            record = a1111.parse_infotext(text)
            details = {k: v for k, v in record.items() if k not in ("prompt", "Negative prompt")}
            fields = {**record, "software": a1111.software(record)}
            return (FOOOCUS if scheme == "a1111" else A1111, fields, details)
    return None


def _with_exif_graphs(texts: dict[str, str]) -> dict[str, str]:
    """ComfyUI's SaveAnimatedWEBP puts "prompt:<json>" in EXIF Model and "workflow:<json>" in
    Make: seen as the PNG chunks they stand for (raw keeps the tags as written)."""
    found = dict(texts)
    for tag in ("Model", "Make"):
        name, sep, rest = texts.get(tag, "").partition(":")
        if sep and name in ("prompt", "workflow") and name not in found and is_json_object_text(
            rest
        ):
            found[name] = rest
    return found


def _comfyui(texts: dict[str, str], warnings: list[str]) -> Parsed | None:
    graph = None
    if "prompt" in texts and is_json_object_text(texts["prompt"]):
        graph = comfyui.api_graph(parse_json(texts["prompt"], "prompt", warnings))
    if graph is None and "workflow" in texts:
        graph = comfyui.ui_graph(parse_json(texts["workflow"], "workflow", warnings))
    if graph is None:
        return None
    fields, details = comfyui.read_graph(graph)
    if not fields:
        warnings.append("ComfyUI graph without a sampler node; kept raw")
        fields = {"software": "ComfyUI"}
    return COMFYUI, fields, details


def _software_hint(provenance: dict[str, Any]) -> str | None:
    for part, key in (("xmp", "creator_tool"), ("c2pa", "claim_generator"),
                      ("iptc", "originating_program")):
        value = provenance.get(part, {}).get(key)
        if isinstance(value, str):
            return value
    return None


def _cap(warnings: list[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(warnings))
    if len(unique) > MAX_WARNINGS:
        unique = [*unique[: MAX_WARNINGS - 1], f"{len(unique) - MAX_WARNINGS + 1} more warnings"]
    return tuple(unique)
