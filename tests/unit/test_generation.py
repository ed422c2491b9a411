"""Generation records: aliases from common tools map onto one vocabulary; raw stays untouched."""

from __future__ import annotations

import copy

import pytest

from service.errors import MetadataError
from service.evidence.generation import GENERATION_FIELDS, normalize_request_metadata
from service.evidence.manifest import MAX_METADATA_BYTES


def test_a1111_style_keys() -> None:
    metadata = {
        "prompt": "a lighthouse at dusk",
        "Negative prompt": "blurry",
        "Steps": "30",
        "Sampler": "DPM++ 2M Karras",
        "CFG scale": "7.5",
        "Seed": "1234567890",
        "Size": "832x1216",
        "Model hash": "6ce0161689",
        "Model": "sd_xl_base_1.0",
    }
    record = normalize_request_metadata(metadata)
    assert record == {
        "prompt": "a lighthouse at dusk",
        "negative_prompt": "blurry",
        "steps": 30,
        "sampler": "DPM++ 2M Karras",
        "cfg_scale": 7.5,
        "seed": 1234567890,
        "width": 832,
        "height": 1216,
        "model_hash": "6ce0161689",
        "model": "sd_xl_base_1.0",
        "raw": metadata,
        "source": "request",
    }


def test_comfyui_and_diffusers_style_keys() -> None:
    record = normalize_request_metadata(
        {
            "ckpt_name": "flux1-dev.safetensors",
            "sampler_name": "euler",
            "noise_seed": 2**53 - 1,  # the largest exact JSON integer; larger: see below
            "cfg": 1,
            "num_inference_steps": 28,
            "guidance_scale": 3.5,
            "negative": "text, watermark",
            "width": 1024.0,
            "height": 768,
        }
    )
    assert record["model"] == "flux1-dev.safetensors"
    assert record["sampler"] == "euler"
    assert record["seed"] == 2**53 - 1
    assert record["cfg_scale"] == 1  # "cfg" outranks "guidance_scale"
    assert record["steps"] == 28
    assert record["negative_prompt"] == "text, watermark"
    assert (record["width"], record["height"]) == (1024, 768)


def test_64_bit_seed_sent_as_a_string_stays_exact() -> None:
    record = normalize_request_metadata({"seed": "18446744073709551615"})
    assert record["seed"] == "18446744073709551615"
    assert normalize_request_metadata({"Seed": -1})["seed"] == -1


def test_64_bit_seed_sent_as_a_number_is_refused_with_advice() -> None:
    with pytest.raises(MetadataError, match="as a string"):
        normalize_request_metadata({"seed": 18446744073709551615})


def test_only_fields_with_values_appear() -> None:
    record = normalize_request_metadata(
        {"prompt": "   ", "seed": "random", "steps": 0, "width": -5, "cfg_scale": "high",
         "model": {"name": "x"}, "software": None, "sampler": True}
    )
    assert set(record) == {"raw", "source"}


def test_empty_record() -> None:
    assert normalize_request_metadata({}) == {"raw": {}, "source": "request"}


def test_canonical_spelling_wins_over_aliases_and_case_variants() -> None:
    record = normalize_request_metadata(
        {"Seed": 2, "seed": 1, "noise_seed": 3, "sampler_name": "b", "sampler": "a"}
    )
    assert (record["seed"], record["sampler"]) == (1, "a")


def test_unusable_first_choice_falls_back_to_the_next_alias() -> None:
    assert normalize_request_metadata({"seed": "n/a", "noise_seed": 5})["seed"] == 5


def test_explicit_width_beats_size() -> None:
    record = normalize_request_metadata({"Size": "512x512", "width": 640})
    assert (record["width"], record["height"]) == (640, 512)


def test_raw_is_an_untouched_copy() -> None:
    metadata = {"prompt": "  padded  ", "extra": {"nested": [1, 2.5, None]}, "Seed": "0042"}
    before = copy.deepcopy(metadata)
    record = normalize_request_metadata(metadata)
    assert record["raw"] == before
    assert record["prompt"] == "padded" and record["seed"] == 42
    record["raw"]["extra"]["nested"].append(3)
    assert metadata == before


def test_every_normalised_name_is_a_known_field() -> None:
    record = normalize_request_metadata(
        {f: "1" for f in ("prompt", "negative_prompt", "model", "model_hash", "seed", "sampler",
                          "steps", "cfg_scale", "width", "height", "software")}
    )
    assert set(record) - {"raw", "source"} == set(GENERATION_FIELDS)


@pytest.mark.parametrize(
    "metadata",
    [
        ["not", "an", "object"],
        "prompt: a cat",
        {"prompt": "x" * MAX_METADATA_BYTES},
        {"cfg": float("nan")},
        {"steps": float("inf")},
    ],
)
def test_out_of_bounds_records_are_metadata_errors(metadata: object) -> None:
    with pytest.raises(MetadataError):
        normalize_request_metadata(metadata)  # type: ignore[arg-type]
