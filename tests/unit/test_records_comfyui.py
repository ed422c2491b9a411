"""ComfyUI's `prompt` (API graph) and `workflow` (UI graph) PNG chunks, as SaveImage writes them:
PngInfo.add_text(name, json.dumps(value)) for the prompt and every extra_pnginfo entry."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from service.evidence.records import read_generation_record
from service.evidence.records.limits import MAX_LINK_HOPS
from tests.support.records import png_texts

POSITIVE = "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"
NEGATIVE = "text, watermark"

# The default workflow of ComfyUI, as the API graph ("prompt" chunk).
API_GRAPH: dict[str, Any] = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler",
        "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
        "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple",
          "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512,
                                                        "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": POSITIVE, "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI",
                                                 "images": ["8", 0]}},
}

# The same workflow as the UI graph ("workflow" chunk), trimmed to what the reader uses.
UI_GRAPH: dict[str, Any] = {
    "last_node_id": 9, "last_link_id": 9, "version": 0.4,
    "nodes": [
        {"id": 7, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "type": "CLIP",
                                                        "link": 5}],
         "outputs": [{"name": "CONDITIONING", "links": [6], "slot_index": 0}],
         "widgets_values": [NEGATIVE]},
        {"id": 6, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "type": "CLIP",
                                                        "link": 3}],
         "widgets_values": [POSITIVE]},
        {"id": 5, "type": "EmptyLatentImage", "widgets_values": [512, 768, 1]},
        {"id": 3, "type": "KSampler",
         "inputs": [{"name": "model", "type": "MODEL", "link": 1},
                    {"name": "positive", "type": "CONDITIONING", "link": 4},
                    {"name": "negative", "type": "CONDITIONING", "link": 6},
                    {"name": "latent_image", "type": "LATENT", "link": 2},
                    {"name": "seed", "type": "INT", "link": 10, "widget": {"name": "seed"}}],
         "widgets_values": [156680208700286, "randomize", 20, 8, "euler", "normal", 1]},
        {"id": 4, "type": "CheckpointLoaderSimple",
         "widgets_values": ["v1-5-pruned-emaonly.safetensors"]},
        {"id": 10, "type": "PrimitiveNode", "widgets_values": [42, "fixed"]},
        {"id": 8, "type": "VAEDecode"}, {"id": 9, "type": "SaveImage",
                                         "widgets_values": ["ComfyUI"]},
    ],
    "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"],
              [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 7, 0, "CLIP"],
              [6, 7, 0, 3, 2, "CONDITIONING"], [7, 3, 0, 8, 0, "LATENT"],
              [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"], [10, 10, 0, 3, 4, "INT"]],
    "groups": [], "config": {}, "extra": {},
}


def saved(prompt: Any = None, workflow: Any = None) -> bytes:
    texts = {}
    if prompt is not None:
        texts["prompt"] = json.dumps(prompt)
    if workflow is not None:
        texts["workflow"] = json.dumps(workflow)
    return png_texts(texts, size=(16, 16))


def test_default_workflow_api_graph() -> None:
    data = saved(API_GRAPH, UI_GRAPH)
    assert b"tEXtprompt\x00{" in data and b"tEXtworkflow\x00{" in data
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "comfyui"
    assert record.fields == {
        "prompt": POSITIVE.strip(), "negative_prompt": NEGATIVE,
        "model": "v1-5-pruned-emaonly.safetensors", "seed": 156680208700286,
        "sampler": "euler", "steps": 20, "cfg_scale": 8, "width": 512, "height": 512,
        "software": "ComfyUI",
    }
    assert record.details == {"sampler_node": "3", "sampler_class": "KSampler",
                              "sampler_nodes": 1, "scheduler": "normal", "denoise": 1}
    assert record.raw == {"prompt": json.dumps(API_GRAPH), "workflow": json.dumps(UI_GRAPH)}
    assert record.warnings == ()


def test_ui_graph_alone_with_seed_from_a_primitive_node() -> None:
    record = read_generation_record(io.BytesIO(saved(workflow=UI_GRAPH)))
    assert record.source == "comfyui"
    assert record.fields == {
        "prompt": POSITIVE.strip(), "negative_prompt": NEGATIVE,
        "model": "v1-5-pruned-emaonly.safetensors", "seed": 42, "sampler": "euler",
        "steps": 20, "cfg_scale": 8, "width": 512, "height": 768, "software": "ComfyUI",
    }


def test_seed_node_loras_sdxl_encoder_and_64_bit_seed() -> None:
    graph = json.loads(json.dumps(API_GRAPH))
    graph["3"]["inputs"]["seed"] = ["20", 0]
    graph["20"] = {"class_type": "Seed (rgthree)", "inputs": {"seed": 18446744073709551000}}
    graph["3"]["inputs"]["model"] = ["21", 0]
    graph["21"] = {"class_type": "LoraLoader", "inputs": {
        "lora_name": "add_detail.safetensors", "strength_model": 0.6, "strength_clip": 0.6,
        "model": ["22", 0], "clip": ["4", 1]}}
    graph["22"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
        "lora_name": "film_grain.safetensors", "strength_model": 1, "model": ["4", 0]}}
    graph["6"] = {"class_type": "CLIPTextEncodeSDXL", "inputs": {
        "width": 1024, "height": 1024, "crop_w": 0, "crop_h": 0, "target_width": 1024,
        "target_height": 1024, "text_g": "a castle", "text_l": "oil painting", "clip": ["4", 1]}}
    record = read_generation_record(io.BytesIO(saved(graph)))
    assert record.fields["seed"] == "18446744073709551000"  # beyond 2^53: kept exact as text
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"
    assert record.fields["prompt"] == "a castle\noil painting"
    assert record.details["loras"] == ["add_detail.safetensors", "film_grain.safetensors"]


def test_flux_sampler_custom_advanced() -> None:
    graph = {
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a neon fox", "clip": ["11", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["10", 0]}},
        "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors",
                                                      "weight_dtype": "default"}},
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0],
            "sigmas": ["17", 0], "latent_image": ["27", 0]}},
        "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "17": {"class_type": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 28,
                                                          "denoise": 1, "model": ["12", 0]}},
        "22": {"class_type": "BasicGuider", "inputs": {"model": ["12", 0],
                                                       "conditioning": ["26", 0]}},
        "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 219670278747233}},
        "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5,
                                                        "conditioning": ["6", 0]}},
        "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768,
                                                               "batch_size": 1}},
    }
    record = read_generation_record(io.BytesIO(saved(graph)))
    assert record.fields == {
        "prompt": "a neon fox", "model": "flux1-dev.safetensors", "seed": 219670278747233,
        "sampler": "euler", "steps": 28, "width": 1024, "height": 768, "software": "ComfyUI",
    }
    assert record.details["scheduler"] == "simple"


def test_sampler_custom_and_advanced_ksampler_hires() -> None:
    graph = json.loads(json.dumps(API_GRAPH))
    graph["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "enable", "noise_seed": 7, "steps": 30, "cfg": 6.5,
        "sampler_name": "dpmpp_2m", "scheduler": "karras", "start_at_step": 0,
        "end_at_step": 10000, "return_with_leftover_noise": "disable", "model": ["4", 0],
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}}
    graph["10"] = {"class_type": "LatentUpscaleBy", "inputs": {"samples": ["3", 0],
                                                               "scale_by": 1.5}}
    graph["11"] = {"class_type": "SamplerCustom", "inputs": {
        "add_noise": True, "noise_seed": 8, "cfg": 5, "model": ["4", 0], "positive": ["6", 0],
        "negative": ["7", 0], "sampler": ["12", 0], "sigmas": ["13", 0],
        "latent_image": ["10", 0]}}
    graph["12"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
    graph["13"] = {"class_type": "BasicScheduler", "inputs": {"scheduler": "normal",
                                                              "steps": 12, "denoise": 0.5,
                                                              "model": ["4", 0]}}
    record = read_generation_record(io.BytesIO(saved(graph)))
    assert record.fields["seed"] == 7 and record.fields["steps"] == 30
    assert record.fields["cfg_scale"] == 6.5 and record.fields["sampler"] == "dpmpp_2m"
    assert record.details["sampler_nodes"] == 2 and record.details["sampler_node"] == "3"
    only_custom = {k: v for k, v in graph.items() if k != "3"}
    only_custom["11"]["inputs"]["latent_image"] = ["5", 0]
    record = read_generation_record(io.BytesIO(saved(only_custom)))
    assert record.fields["seed"] == 8 and record.fields["steps"] == 12
    assert record.fields["sampler"] == "euler" and record.fields["cfg_scale"] == 5
    assert record.fields["prompt"] == POSITIVE.strip() and record.fields["width"] == 512


def test_cyclic_links_end_quickly() -> None:
    graph = json.loads(json.dumps(API_GRAPH))
    graph["6"]["inputs"] = {"conditioning": ["30", 0]}
    graph["30"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["31", 0]}}
    graph["31"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0]}}
    graph["3"]["inputs"]["seed"] = ["40", 0]
    graph["40"] = {"class_type": "Reroute", "inputs": {"x": ["41", 0]}}
    graph["41"] = {"class_type": "Reroute", "inputs": {"x": ["40", 0]}}
    graph["4"]["inputs"] = {"model": ["3", 0]}
    started = time.perf_counter()
    record = read_generation_record(io.BytesIO(saved(graph)))
    assert time.perf_counter() - started < 1
    assert "prompt" not in record.fields and "seed" not in record.fields
    assert "model" not in record.fields
    assert record.fields["negative_prompt"] == NEGATIVE


def test_long_chain_is_cut_at_the_hop_limit() -> None:
    graph = json.loads(json.dumps(API_GRAPH))
    count = MAX_LINK_HOPS + 10
    graph["3"]["inputs"]["positive"] = ["100", 0]
    for i in range(count):
        graph[str(100 + i)] = {"class_type": "ConditioningSetArea",
                               "inputs": {"conditioning": [str(101 + i), 0]}}
    graph[str(100 + count)] = {"class_type": "CLIPTextEncode", "inputs": {"text": "far"}}
    record = read_generation_record(io.BytesIO(saved(graph)))
    assert "prompt" not in record.fields


def test_graph_without_sampler_is_kept_raw_with_a_warning() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}
    record = read_generation_record(io.BytesIO(saved(graph)))
    assert record.source == "comfyui" and record.fields == {"software": "ComfyUI"}
    assert record.raw["prompt"] == json.dumps(graph)
    assert any("without a sampler" in w for w in record.warnings)


def test_ui_graph_schema_1_links_as_objects() -> None:
    workflow = json.loads(json.dumps(UI_GRAPH))
    workflow["version"] = 1
    workflow["links"] = [{"id": k[0], "origin_id": k[1], "origin_slot": k[2], "target_id": k[3],
                          "target_slot": k[4], "type": k[5]} for k in UI_GRAPH["links"]]
    record = read_generation_record(io.BytesIO(saved(workflow=workflow)))
    assert record.fields["seed"] == 42 and record.fields["prompt"] == POSITIVE.strip()
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"
