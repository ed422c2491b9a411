"""Tensor.art: a `generation_data` PNG text holding JSON (prompt, negativePrompt, width,
height, seed as text, steps, cfgScale, clipSkip, baseModel {modelFileName, hash}), beside the
ComfyUI `prompt` graph it ran (read by the ComfyUI reader and merged). Its UTF-8 is written
into tEXt as is; png.py decodes tEXt as UTF-8 when it is valid."""

from __future__ import annotations

from typing import Any

from service.evidence.records.record import TENSORART
from service.evidence.records.sources import Found, Reader, Sources

KEY = "generation_data"


def read(src: Sources) -> Found | None:
    meta = src.json(KEY)
    if not isinstance(meta, dict):
        return None
    base = meta.get("baseModel")
    model: dict[str, Any] = base if isinstance(base, dict) else {}
    fields: dict[str, Any] = {
        "prompt": meta.get("prompt"), "negative_prompt": meta.get("negativePrompt"),
        "seed": meta.get("seed"), "steps": meta.get("steps"), "cfg_scale": meta.get("cfgScale"),
        "width": meta.get("width"), "height": meta.get("height"),
        "model": model.get("modelFileName"), "model_hash": model.get("hash"),
        "software": "Tensor.art",
    }
    details = {"clip_skip": meta["clipSkip"]} if "clipSkip" in meta else {}
    return Found(TENSORART, fields, details)


READER = Reader("tensorart", 92, read)
