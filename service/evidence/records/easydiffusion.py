"""Easy Diffusion: one PNG text chunk per request field, named either by the task's keys
(`prompt`, `use_stable_diffusion_model`, `num_inference_steps`...) or by their labels
(`Prompt`, `Stable Diffusion model`, `Steps`...: TASK_TEXT_MAPPING in its save_utils.py); the
same as a JSON object in EXIF UserComment for JPEG/WebP."""

from __future__ import annotations

from typing import Any

from service.evidence.records.record import EASYDIFFUSION
from service.evidence.records.sources import Found, Reader, Sources

# Task key, label -> field.
KEYS = {
    ("prompt", "Prompt"): "prompt",
    ("negative_prompt", "Negative Prompt"): "negative_prompt",
    ("seed", "Seed"): "seed",
    ("use_stable_diffusion_model", "Stable Diffusion model"): "model",
    ("sampler_name", "Sampler"): "sampler",
    ("width", "Width"): "width",
    ("height", "Height"): "height",
    ("num_inference_steps", "Steps"): "steps",
    ("guidance_scale", "Guidance Scale"): "cfg_scale",
}
DETAILS = (("clip_skip", "Clip Skip"), ("use_vae_model", "VAE model"),
           ("use_lora_model", "LoRA model"), ("prompt_strength", "Prompt Strength"))
MARKERS = ("use_stable_diffusion_model", "Stable Diffusion model")  # keys only it writes


def read(src: Sources) -> Found | None:
    record: Any = src.texts if any(m in src.texts for m in MARKERS) else None
    if record is None:
        meta = src.json("UserComment")
        record = meta if isinstance(meta, dict) and any(m in meta for m in MARKERS) else None
    if record is None:
        return None
    fields: dict[str, Any] = {"software": "Easy Diffusion"}
    for (key, label), name in KEYS.items():
        fields[name] = record.get(key, record.get(label))
    details = {key: record.get(key, record.get(label)) for key, label in DETAILS
               if key in record or label in record}
    return Found(EASYDIFFUSION, fields, details)


READER = Reader("easydiffusion", 60, read)
