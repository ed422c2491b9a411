"""Fooocus: with its own scheme, a JSON `parameters` PNG chunk (UserComment in JPEG/WebP) and a
`fooocus_scheme` chunk (MakerNote); with the "a1111" scheme, infotext read by a1111.py."""

from __future__ import annotations

import re
from typing import Any

from service.evidence.records.record import FOOOCUS
from service.evidence.records.sources import Found, Reader, Sources

SCHEME_KEY = "fooocus_scheme"
DETAIL_KEYS = ("styles", "performance", "scheduler", "refiner_model", "refiner_switch",
               "sharpness", "metadata_scheme", "full_prompt", "full_negative_prompt")
_RESOLUTION = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")  # str((width, height))


def is_fooocus_json(meta: Any) -> bool:
    version = meta.get("version") if isinstance(meta, dict) else None
    return isinstance(version, str) and version.startswith("Fooocus")


def read_record(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, details) of Fooocus's JSON record."""
    fields: dict[str, Any] = {
        "prompt": meta.get("prompt"),
        "negative_prompt": meta.get("negative_prompt"),
        "seed": meta.get("seed"),
        "steps": meta.get("steps"),
        "cfg_scale": meta.get("guidance_scale"),
        "sampler": meta.get("sampler"),
        "model": meta.get("base_model"),
        "model_hash": meta.get("base_model_hash"),
        "software": meta.get("version"),
    }
    match = _RESOLUTION.fullmatch(str(meta.get("resolution", "")))
    if match:
        fields["width"], fields["height"] = int(match[1]), int(match[2])
    details: dict[str, Any] = {k: meta[k] for k in DETAIL_KEYS if k in meta}
    loras = {k: v for k, v in meta.items() if k.startswith("lora_combined_")}
    if loras:
        details["loras"] = loras
    return fields, details


def read(src: Sources) -> Found | None:
    scheme = src.texts.get(SCHEME_KEY, src.texts.get("MakerNote", ""))
    for key in ("parameters", "UserComment"):
        meta = src.json(key)
        if is_fooocus_json(meta) or (scheme == "fooocus" and isinstance(meta, dict)):
            return Found(FOOOCUS, *read_record(meta))
    return None


READER = Reader("fooocus", 80, read)
