"""read_generation_record: find which tools' records an image file carries, read and merge."""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from typing import Any, BinaryIO

from service.evidence.generation import GENERATION_FIELDS, same_value
from service.evidence.records import c2pa, stealth, xmp
from service.evidence.records.containers import Embedded, read_embedded
from service.evidence.records.limits import MAX_WARNINGS
from service.evidence.records.record import (
    UNKNOWN,
    ExtractedRecord,
    bound_raw,
    jsonable,
    normalise,
)
from service.evidence.records.registry import READERS
from service.evidence.records.sources import Found, Reader, Sources

log = logging.getLogger(__name__)
UNREADABLE = "the embedded generation record could not be read; registered without it"
UNRECOGNISED = "the embedded generation record is in no format known here; kept raw"
# Keys only generating tools write: when one is present but unreadable, it is kept raw.
RECORD_KEYS = frozenset({"parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata"})
# Stands for a tool's chunk no registered reader reads (never run: its reading is made here).
UNKNOWN_READER = Reader(UNKNOWN, 0, lambda src: None)
# Fields whose disagreement is not a conflict: a reader's guess of the tool, not a statement.
UNCONFLICTED = frozenset({"software"})


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
            return _interpret(embedded, fileobj)
        except Exception:  # a reader bug on hostile bytes must not fail an upload
            log.warning("generation record reader failed", exc_info=True)
            return ExtractedRecord(warnings=(UNREADABLE,))
        finally:
            fileobj.seek(0)


def _interpret(embedded: Embedded, fileobj: BinaryIO) -> ExtractedRecord:
    warnings = embedded.warnings
    provenance: dict[str, Any] = {}
    raw: dict[str, Any] = dict(embedded.texts)
    raw.update(embedded.skipped)
    props = xmp.read_xmp(embedded.xmp, warnings) if embedded.xmp else {}
    if props:
        raw["XMP"] = provenance["xmp"] = props
    if embedded.iptc:
        raw["IPTC"] = provenance["iptc"] = embedded.iptc
    facts = c2pa.read_c2pa(fileobj, warnings) if embedded.c2pa else {}
    if facts:
        provenance["c2pa"] = facts
    src = Sources(dict(embedded.texts), props, embedded.iptc, facts, warnings)
    found = read_all(src)
    if all(reader.fallback for reader, _ in found) and embedded.alpha:
        hidden = stealth.read_stealth(fileobj, warnings)
        if hidden:
            raw["stealth"] = hidden
            found = read_all(Sources(hidden, props, embedded.iptc, facts, warnings)) or found
    if not found and RECORD_KEYS.intersection(raw):
        # A tool's record in no known layout (or broken): kept raw, bounded; flat text chunks
        # that name fields ("prompt": "a fox", "Steps": "20") still count, JSON does not.
        flat = {k: v for k, v in embedded.texts.items() if v.lstrip()[:1] not in ("{", "[")}
        found = [(UNKNOWN_READER, Found(UNKNOWN, flat, {}))]
        warnings.append(UNRECOGNISED)
    if not found:
        return ExtractedRecord(container=embedded.container, warnings=_cap(warnings))
    source, fields, details = merge(found, warnings)
    if not fields.get("software"):
        hint = _software_hint(provenance)
        if hint:
            fields["software"] = hint
    return ExtractedRecord(
        source=source,
        fields=fields,
        raw=bound_raw(raw, warnings),
        details=jsonable(details),
        provenance=jsonable(provenance),
        container=embedded.container,
        warnings=_cap(warnings),
    )


def read_all(src: Sources) -> list[tuple[Reader, Found]]:
    """Every registered reader's reading, highest priority first; provenance-only (fallback)
    readers only when no other found a record."""
    found = [(reader, f) for reader in READERS if (f := reader.read(src)) is not None]
    real = [(reader, f) for reader, f in found if not reader.fallback]
    return real or found


def merge(found: list[tuple[Reader, Found]],
          warnings: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(source, normalised fields, details): each field from the highest-priority reader that
    states it; where lower ones state it otherwise, details["conflicts"] lists every value by
    reader (as generation.merge_generation does for file against request)."""
    readings = [(reader.name, normalise(f.fields, warnings)) for reader, f in found]
    fields: dict[str, Any] = {}
    conflicts: list[dict[str, Any]] = []
    for name in GENERATION_FIELDS:
        stated = [(reader, values[name]) for reader, values in readings if name in values]
        if not stated:
            continue
        fields[name] = stated[0][1]
        if name not in UNCONFLICTED and any(not same_value(v, stated[0][1]) for _, v in stated):
            conflicts.append({"field": name, "values": dict(stated)})
    details = dict(found[0][1].details)
    for _, other in found[1:]:
        for key, value in other.details.items():
            details.setdefault(key, value)
    if len(found) > 1:
        details["formats"] = [reader.name for reader, _ in found]
    if conflicts:
        details["conflicts"] = conflicts
    return found[0][1].source, fields, details


def _software_hint(provenance: dict[str, Any]) -> str | None:
    for part, key in (("xmp", "creator_tool"), ("c2pa", "claim_generator"),
                      ("iptc", "originating_program")):
        value = provenance.get(part, {}).get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _cap(warnings: list[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(warnings))
    if len(unique) > MAX_WARNINGS:
        unique = [*unique[: MAX_WARNINGS - 1], f"{len(unique) - MAX_WARNINGS + 1} more warnings"]
    return tuple(unique)
