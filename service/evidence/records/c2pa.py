"""C2PA: the manifest store (JUMBF) parsed far enough to name its active manifest's claim
generator and actions, without a network or signature checks ("present" is a fact, not a
verdict; validation is c2pa-python's job).

The store is a JUMBF superbox labelled "c2pa" (PNG chunk caBX, JPEG APP11 segments, WebP chunk
C2PA) holding one superbox per manifest; the active manifest is the last one (C2PA 2.1,
section 11.1.4.1), earlier ones are its ingredients'. A manifest holds a claim (`c2pa.claim` or
`c2pa.claim.v2`, CBOR: `claim_generator` text in v1, `claim_generator_info` map(s) in both) and
an assertion store whose `c2pa.actions` / `c2pa.actions.v2` (CBOR) say what was done.
"""

from __future__ import annotations

import struct
from typing import Any

from service.evidence.records import cbor
from service.evidence.records.record import C2PA
from service.evidence.records.sources import Found, Reader, Sources

MAX_BOXES = 4096  # JUMBF boxes walked per store; a store has a few dozen
MAX_BOX_DEPTH = 8  # store > manifest > assertion store > assertion > content: 5 levels
MAX_GENERATOR_CHARS = 512  # a generator string is a product name and version
MAX_ACTIONS = 32  # actions kept from the active manifest; real ones list a handful
ACTION_KEYS = ("action", "softwareAgent", "digitalSourceType", "when")


def read_c2pa(store: bytes) -> dict[str, Any]:
    """{"present": True, "manifests", "active_manifest", "claim_generator", "actions"}: the
    parts found in the active manifest (only "present" when the store cannot be parsed)."""
    out: dict[str, Any] = {"present": True}
    try:
        out.update(_active_manifest(store))
    except (ValueError, struct.error):  # CborError is a ValueError
        return {"present": True}
    return out


def _active_manifest(store: bytes) -> dict[str, Any]:
    root = _boxes(store, 0, len(store), 0, [0])
    top = next((b for b in root if b["label"] == "c2pa"), None)
    manifests = [b for b in (top or {}).get("children", []) if b["type"] == b"jumb"]
    if not manifests:
        return {}
    active = manifests[-1]
    out: dict[str, Any] = {"manifests": len(manifests), "active_manifest": active["label"]}
    for box in active["children"]:
        if box["label"] in ("c2pa.claim", "c2pa.claim.v2"):
            out.update(_claim(_cbor_of(box)))
        elif box["label"] == "c2pa.assertions":
            actions = [_cbor_of(a) for a in box["children"]
                       if a["label"].split("__")[0] in ("c2pa.actions", "c2pa.actions.v2")]
            lists = [c["actions"] for c in actions
                     if isinstance(c, dict) and isinstance(c.get("actions"), list)]
            found = [_action(a) for items in lists for a in items[:MAX_ACTIONS]
                     if isinstance(a, dict)]
            if found:
                out["actions"] = found[:MAX_ACTIONS]
    return out


def _boxes(data: bytes, start: int, end: int, depth: int, count: list[int]) -> list[dict[str, Any]]:
    """The boxes in data[start:end]; superboxes (jumb) with their label and children."""
    out: list[dict[str, Any]] = []
    at = start
    while at + 8 <= end:
        count[0] += 1
        if count[0] > MAX_BOXES or depth > MAX_BOX_DEPTH:
            raise ValueError("JUMBF too large or deep")
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError("JUMBF box runs past its parent")
        box: dict[str, Any] = {"type": kind, "label": "", "start": at + header, "end": at + size,
                               "children": [], "data": data}
        if kind == b"jumb":
            box["children"] = _boxes(data, at + header, at + size, depth + 1, count)
            description = box["children"][0] if box["children"] else None
            if description is not None and description["type"] == b"jumd":
                box["label"] = _label(data[description["start"] : description["end"]])
        out.append(box)
        at += size
    return out


def _label(jumd: bytes) -> str:
    """The label of a JUMBF description box: 16-byte type, toggles, then the label (if
    toggles bit 2) NUL-terminated."""
    if len(jumd) < 17 or not jumd[16] & 0x02:
        return ""
    return jumd[17:].split(b"\x00", 1)[0].decode("utf-8", "replace")


def _cbor_of(box: dict[str, Any]) -> Any:
    content = next((c for c in box["children"] if c["type"] == b"cbor"), None)
    if content is None:
        return None
    return cbor.loads(content["data"][content["start"] : content["end"]])


def _claim(claim: Any) -> dict[str, Any]:
    if not isinstance(claim, dict):
        return {}
    out: dict[str, Any] = {}
    info = claim.get("claim_generator_info")
    first = info[0] if isinstance(info, list) and info else info
    name = first.get("name") if isinstance(first, dict) else None
    generator = claim.get("claim_generator")
    generator = generator if isinstance(generator, str) else name
    if isinstance(generator, str):
        out["claim_generator"] = generator[:MAX_GENERATOR_CHARS]
    if isinstance(first, dict):
        out["claim_generator_info"] = {k: str(v)[:MAX_GENERATOR_CHARS] for k, v in first.items()
                                       if k in ("name", "version") and v is not None}
    return out


def _action(action: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ACTION_KEYS:
        value = action.get(key)
        if isinstance(value, dict):  # softwareAgent as claim_generator_info (actions v2)
            value = value.get("name")
        if isinstance(value, str):
            out[key] = value[:MAX_GENERATOR_CHARS]
    return out


def read(src: Sources) -> Found | None:
    return Found(C2PA, {}, {}) if src.c2pa else None


READER = Reader("c2pa", 10, read, fallback=True)
