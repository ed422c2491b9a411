"""Draw Things: XMP with CreatorTool "Draw Things", exif:UserComment holding its JSON
({"c": prompt, "uc": negative, "seed", "steps", "scale", "sampler", "model", "size": "WxH",
"strength", "v2": {...}}) and dc:description holding "prompt\\n-negative\\nSteps: ..., Sampler:
..., Guidance Scale: ..., Seed: ..., Size: ..., Model: ..."; the JSON is read, the description
only fills what it lacks (the reader's merge records any disagreement)."""

from __future__ import annotations

import json
from typing import Any

from service.evidence.records.a1111 import parse_infotext
from service.evidence.records.limits import MAX_JSON_TEXT_BYTES
from service.evidence.records.record import DRAWTHINGS
from service.evidence.records.sources import Found, Reader, Sources

CREATOR = "Draw Things"
DETAIL_KEYS = ("strength", "seed_mode", "shift", "lora", "hires_fix", "refiner", "v2")


def read(src: Sources) -> Found | None:
    if src.xmp.get("creator_tool") != CREATOR:
        return None
    fields: dict[str, Any] = {"software": CREATOR}
    details: dict[str, Any] = {}
    comment = src.xmp.get("user_comment")
    meta = _json(comment) if isinstance(comment, str) else None
    if isinstance(meta, dict):
        fields.update({"prompt": meta.get("c"), "negative_prompt": meta.get("uc"),
                       "seed": meta.get("seed"), "steps": meta.get("steps"),
                       "cfg_scale": meta.get("scale"), "sampler": meta.get("sampler"),
                       "model": meta.get("model"), "size": meta.get("size")})
        details = {k: meta[k] for k in DETAIL_KEYS if k in meta}
    description = src.xmp.get("description")
    if isinstance(description, str):
        for name, value in _description(description).items():
            if fields.get(name) is None:
                fields[name] = value
    return Found(DRAWTHINGS, fields, details)


def _json(text: str) -> Any:
    if len(text) > MAX_JSON_TEXT_BYTES or not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _description(text: str) -> dict[str, Any]:
    """Its own infotext: the negative prompt is the line starting "-" before the parameters."""
    lines = text.strip().split("\n")
    if len(lines) < 2 or "Steps: " not in lines[-1]:
        return {}
    record = parse_infotext(lines[-1])  # the parameters line alone: its prompt is ""
    params = {k: v for k, v in record.items() if k != "prompt"}
    body = lines[:-1]
    negative = [i for i, line in enumerate(body) if line.startswith("-")]
    if len(negative) == 1 and negative[0] == len(body) - 1:
        params["negative_prompt"] = body[-1][1:]
        body = body[:-1]
    params["prompt"] = "\n".join(body)
    return params


READER = Reader("drawthings", 70, read)
