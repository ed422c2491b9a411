"""InvokeAI: `invokeai_metadata` (3.x and later) and the older `sd-metadata` (2.x) JSON chunks."""

from __future__ import annotations

import re
from typing import Any

_NEGATIVE = re.compile(r"\[([^\]]*)\]")  # 2.x prompts carry the negative prompt in [brackets]


def read_metadata(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, details) of an `invokeai_metadata` object."""
    model = meta.get("model")
    fields: dict[str, Any] = {
        "prompt": meta.get("positive_prompt"),
        "negative_prompt": meta.get("negative_prompt"),
        "seed": meta.get("seed"),
        "steps": meta.get("steps"),
        "cfg_scale": meta.get("cfg_scale"),
        "width": meta.get("width"),
        "height": meta.get("height"),
        "sampler": meta.get("scheduler"),  # InvokeAI calls its sampler "scheduler"
        "software": _software(meta.get("app_version")),
    }
    if isinstance(model, dict):
        fields["model"] = model.get("name", model.get("model_name"))
        fields["model_hash"] = model.get("hash")
    elif isinstance(model, str):
        fields["model"] = model
    details: dict[str, Any] = {}
    for key in ("generation_mode", "cfg_rescale_multiplier", "rand_device"):
        if key in meta:
            details[key] = meta[key]
    loras = meta.get("loras")
    if isinstance(loras, list):
        details["loras"] = [_lora(lora) for lora in loras if isinstance(lora, dict)]
    return fields, details


def _lora(lora: dict[str, Any]) -> dict[str, Any]:
    model = lora.get("model") if isinstance(lora.get("model"), dict) else lora.get("lora", {})
    model = model if isinstance(model, dict) else {}
    return {"name": model.get("name", model.get("model_name")), "weight": lora.get("weight")}


def read_sd_metadata(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, details) of a 2.x `sd-metadata` object: {"model_weights"..., "image": {...}}."""
    image: dict[str, Any] = meta["image"] if isinstance(meta.get("image"), dict) else {}
    prompt = image.get("prompt")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
        prompt = prompt[0].get("prompt")
    negative = None
    if isinstance(prompt, str):
        negative = ", ".join(m.strip() for m in _NEGATIVE.findall(prompt)) or None
        prompt = _NEGATIVE.sub("", prompt).strip()
    fields = {
        "prompt": prompt,
        "negative_prompt": negative,
        "model": meta.get("model_weights", meta.get("model_id")),
        "model_hash": meta.get("model_hash"),
        "seed": image.get("seed"),
        "steps": image.get("steps"),
        "cfg_scale": image.get("cfg_scale"),
        "width": image.get("width"),
        "height": image.get("height"),
        "sampler": image.get("sampler"),
        "software": _software(meta.get("app_version")),
    }
    details: dict[str, Any] = {k: image[k] for k in ("type", "hires_fix", "seamless", "variations")
                               if k in image}
    return fields, details


def _software(version: Any) -> str:
    return f"InvokeAI {version}" if isinstance(version, str) and version else "InvokeAI"
