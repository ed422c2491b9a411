"""SwarmUI: a JSON `parameters` text (PNG) or EXIF UserComment (JPEG/WebP) holding
{"sui_image_params": {prompt, negativeprompt, model, seed, steps, cfgscale, width, height,
sampler, scheduler, swarm_version, ...}, "sui_extra_data": {...}, "sui_models": [...]}."""

from __future__ import annotations

from typing import Any

from service.evidence.records.record import SWARMUI
from service.evidence.records.sources import Found, Reader, Sources

DETAIL_KEYS = ("scheduler", "vae", "loras", "loraweights", "aspectratio", "refinermodel",
               "refinercontrolpercentage", "original_prompt", "wildcardseed")


def read(src: Sources) -> Found | None:
    for key in ("parameters", "UserComment"):
        meta = src.json(key)
        params = meta.get("sui_image_params") if isinstance(meta, dict) else None
        if isinstance(params, dict):
            return Found(SWARMUI, _fields(params), _details(params, meta))
    return None


def _fields(params: dict[str, Any]) -> dict[str, Any]:
    version = params.get("swarm_version")
    return {
        "prompt": params.get("prompt"), "negative_prompt": params.get("negativeprompt"),
        "model": params.get("model"), "seed": params.get("seed"), "steps": params.get("steps"),
        "cfg_scale": params.get("cfgscale"), "width": params.get("width"),
        "height": params.get("height"), "sampler": params.get("sampler"),
        "software": f"SwarmUI {version}" if isinstance(version, str) and version else "SwarmUI",
    }


def _details(params: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    details = {k: params[k] for k in DETAIL_KEYS if k in params}
    extra = meta.get("sui_extra_data")
    if isinstance(extra, dict):
        details["extra"] = extra
    return details


READER = Reader("swarmui", 85, read)
