"""merge_generation: the request's record and the file's, side by side, conflicts named."""

from __future__ import annotations

import io

from service.evidence.generation import merge_generation, normalize_request_metadata
from service.evidence.manifest import canonicalize
from service.evidence.records import read_generation_record
from tests.support.records import png_texts

INFOTEXT = ("a lighthouse at dusk\nNegative prompt: blurry\n"
            "Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x768, Model: sdxl")


def file_generation() -> dict:
    return read_generation_record(io.BytesIO(png_texts({"parameters": INFOTEXT}))).as_generation()


def test_without_a_file_record_the_request_is_unchanged() -> None:
    request = normalize_request_metadata({"prompt": "x", "seed": 1})
    assert merge_generation(request, None) == request


def test_file_only() -> None:
    merged = merge_generation(normalize_request_metadata({}), file_generation())
    assert merged == {
        "prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "model": "sdxl",
        "seed": 42, "sampler": "Euler a", "steps": 30, "cfg_scale": 7, "width": 512,
        "height": 768, "software": "AUTOMATIC1111",
        "source": "a1111",
        "sources": {"file": {k: v for k, v in file_generation().items() if k != "raw"}},
        "raw": {"file": {"parameters": INFOTEXT}},
        "conflicts": [],
    }
    canonicalize(merged)


def test_agreeing_and_conflicting_request() -> None:
    metadata = {"prompt": "a lighthouse at dusk ", "Seed": "43", "steps": 30.0,
                "model": "my-finetune", "external_note": "posted to Mastodon"}
    request = normalize_request_metadata(metadata)
    merged = merge_generation(request, file_generation())
    assert merged["seed"] == 42 and merged["model"] == "sdxl"  # the file's values lead
    assert merged["steps"] == 30 and merged["prompt"] == "a lighthouse at dusk"
    assert merged["source"] == "a1111"
    assert merged["conflicts"] == [
        {"field": "model", "file": "sdxl", "request": "my-finetune"},
        {"field": "seed", "file": 42, "request": 43},
    ]
    assert merged["sources"]["request"] == {k: v for k, v in request.items() if k != "raw"}
    assert merged["sources"]["request"]["source"] == "request"
    assert merged["raw"] == {"file": {"parameters": INFOTEXT}, "request": metadata}


def test_request_fills_what_the_file_lacks() -> None:
    request = normalize_request_metadata({"model_hash": "31e35c80fc", "software": "my-app"})
    merged = merge_generation(request, file_generation())
    assert merged["model_hash"] == "31e35c80fc"
    assert merged["software"] == "AUTOMATIC1111"
    assert merged["conflicts"] == [
        {"field": "software", "file": "AUTOMATIC1111", "request": "my-app"}]
