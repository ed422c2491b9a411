"""InvokeAI: `invokeai_metadata` (3.x and later), the older `sd-metadata` (2.x) JSON chunk, and
the 2.x `Dream` chunk, a command line: `"banana sushi" -s 50 -S 2028635318 -W 512 -H 512 -C 7.5
-A k_lms` (prompt, then the dream command's options)."""

from __future__ import annotations

import re
import shlex
from typing import Any

from service.evidence.records.record import INVOKEAI
from service.evidence.records.sources import Found, Reader, Sources

MAX_DREAM_CHARS = 16 * 1024  # a Dream command line: a prompt and a dozen options
# Dream options (InvokeAI 2.x ldm/invoke/args.py), short and long, -> the field they give;
# "-m" is left out: early versions meant the sampler by it, later ones the model.
DREAM_OPTIONS = {"-s": "steps", "--steps": "steps", "-S": "seed", "--seed": "seed",
                 "-W": "width", "--width": "width", "-H": "height", "--height": "height",
                 "-C": "cfg_scale", "--cfg_scale": "cfg_scale", "-A": "sampler",
                 "--sampler": "sampler", "-f": "strength",
                 "--strength": "strength"}

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
    """(fields, details) of a 2.x `sd-metadata` object: {"model_weights"..., "image": {...}};
    early 2.x wrote "images": [{...}], read when it holds one image (more: which is unknown)."""
    image: dict[str, Any] = meta["image"] if isinstance(meta.get("image"), dict) else {}
    images = meta.get("images")
    if not image and isinstance(images, list) and len(images) == 1:
        image = images[0] if isinstance(images[0], dict) else {}
    prompt = image.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], dict):
        prompt = prompt[0].get("prompt")  # several weighted prompts: no one prompt to report
    prompt, negative = _split_negative(prompt)
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


def _split_negative(prompt: Any) -> tuple[Any, str | None]:
    if not isinstance(prompt, str):
        return (None if isinstance(prompt, list) else prompt), None
    negative = ", ".join(m.strip() for m in _NEGATIVE.findall(prompt)) or None
    return _NEGATIVE.sub("", prompt).strip(), negative


def read_dream(text: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(fields, details) of a Dream command line, or None when it is not one."""
    if len(text) > MAX_DREAM_CHARS:
        return None
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes
        return None
    if not words or words[0].startswith("-"):
        return None
    prompt, negative = _split_negative(words[0])
    fields: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative,
                              "software": "InvokeAI"}
    details: dict[str, Any] = {}
    options = iter(words[1:])
    for word in options:
        name = DREAM_OPTIONS.get(word)
        value = next(options, None) if name else None
        if name is None or value is None:
            continue
        (details if name == "strength" else fields).setdefault(name, value)
    return (fields, details) if len(fields) > 3 else None


def read(src: Sources) -> Found | None:
    for key, parse in (("invokeai_metadata", read_metadata), ("sd-metadata", read_sd_metadata)):
        meta = src.json(key)
        if isinstance(meta, dict):
            return Found(INVOKEAI, *parse(meta))
    return None


def read_dream_chunk(src: Sources) -> Found | None:
    text = src.texts.get("Dream")
    found = read_dream(text) if text is not None else None
    return Found(INVOKEAI, *found) if found else None


READER = Reader("invokeai", 80, read)
DREAM_READER = Reader("invokeai-dream", 75, read_dream_chunk)


def _software(version: Any) -> str:
    return f"InvokeAI {version}" if isinstance(version, str) and version else "InvokeAI"
