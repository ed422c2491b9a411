"""NovelAI: PNG text chunks Title, Description (the prompt), Software "NovelAI", Source (model and
its hash) and Comment (the request as JSON: prompt, uc, steps, scale, seed, sampler, size...)."""

from __future__ import annotations

import re
from typing import Any

from service.evidence.records.record import NOVELAI
from service.evidence.records.sources import Found, Reader, Sources

_SOURCE = re.compile(r"(.*?)\s+([0-9A-Fa-f]{8})")  # "Stable Diffusion XL C1E1DE52"


def is_novelai(texts: dict[str, str]) -> bool:
    return texts.get("Software", "").strip() == "NovelAI"


def read_record(texts: dict[str, str], comment: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, details) from the chunks and the parsed Comment (None when absent or bad)."""
    comment = comment if isinstance(comment, dict) else {}
    fields: dict[str, Any] = {
        "prompt": texts.get("Description", comment.get("prompt")),
        "negative_prompt": comment.get("uc"),
        "seed": comment.get("seed"),
        "steps": comment.get("steps"),
        "cfg_scale": comment.get("scale"),
        "sampler": comment.get("sampler"),
        "width": comment.get("width"),
        "height": comment.get("height"),
        "software": "NovelAI",
    }
    source = texts.get("Source", "").strip()
    match = _SOURCE.fullmatch(source)
    fields["model"] = match[1] if match else source or None
    fields["model_hash"] = match[2] if match else None
    details = {k: comment[k] for k in ("noise_schedule", "cfg_rescale", "request_type",
                                       "signed_hash") if k in comment}
    if "Generation time" in texts:
        details["generation_time"] = texts["Generation time"]
    return fields, details


def read(src: Sources) -> Found | None:
    if not is_novelai(src.texts):
        return None
    return Found(NOVELAI, *read_record(src.texts, src.json("Comment")))


READER = Reader("novelai", 80, read)
