"""ComfyUI graphs with custom nodes, walked by link type from the save node: the sampler that
made the saved image decides, and a value that cannot be attributed is left out."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image

from service.evidence.records import read_generation_record
from tests.support.records import png_texts, user_comment_exif, webp_with_chunks
from tests.unit.test_records_comfyui import API_GRAPH, NEGATIVE, POSITIVE, UI_GRAPH, saved


def _graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(json.dumps(API_GRAPH))
    return graph


def read(graph: dict[str, Any]) -> Any:
    return read_generation_record(io.BytesIO(saved(graph)))


def test_efficiency_nodes_sampler_and_loader() -> None:
    # Efficiency Nodes: the loader holds the checkpoint, prompts as text, and the latent size.
    graph = {
        "1": {"class_type": "Efficient Loader", "inputs": {
            "ckpt_name": "dreamshaper_8.safetensors", "vae_name": "Baked VAE", "clip_skip": -1,
            "lora_name": "None", "lora_model_strength": 1, "lora_clip_strength": 1,
            "positive": "a lighthouse at dusk", "negative": "blurry", "token_normalization":
            "none", "weight_interpretation": "comfy", "empty_latent_width": 640,
            "empty_latent_height": 896, "batch_size": 1}},
        "2": {"class_type": "KSampler (Efficient)", "inputs": {
            "seed": 1234, "steps": 28, "cfg": 6.5, "sampler_name": "dpmpp_2m",
            "scheduler": "karras", "denoise": 1, "preview_method": "auto", "vae_decode": "true",
            "model": ["1", 0], "positive": ["1", 1], "negative": ["1", 2],
            "latent_image": ["1", 3], "optional_vae": ["1", 4]}},
        "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["2", 5]}},
    }
    record = read(graph)
    assert record.fields == {
        "prompt": "a lighthouse at dusk", "negative_prompt": "blurry",
        "model": "dreamshaper_8.safetensors", "seed": 1234, "steps": 28, "cfg_scale": 6.5,
        "sampler": "dpmpp_2m", "width": 640, "height": 896, "software": "ComfyUI",
    }
    assert "loras" not in record.details  # "None" is the loader's empty choice


def test_inspire_sampler_wildcard_encoder_and_rgthree_model_link() -> None:
    graph = _graph()
    graph["3"]["class_type"] = "KSampler //Inspire"
    graph["3"]["inputs"].update({"noise_mode": "GPU(=A1111)", "batch_seed_mode": "incremental",
                                 "variation_seed": 0, "variation_strength": 0})
    graph["6"] = {"class_type": "ImpactWildcardEncode", "inputs": {
        "wildcard_text": "a __animal__ in the snow", "populated_text": "a fox in the snow",
        "mode": "populate", "seed": 5, "model": ["4", 0], "clip": ["4", 1]}}
    graph["3"]["inputs"]["model"] = ["20", 0]
    graph["20"] = {"class_type": "Power Lora Loader (rgthree)", "inputs": {
        "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"},
        "opt_model": ["4", 0], "opt_clip": ["4", 1]}}
    record = read(graph)
    assert record.fields["prompt"] == "a fox in the snow"  # what ran, not the template
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"
    assert record.details["sampler_class"] == "KSampler //Inspire"


def test_model_merge_leaves_the_model_out() -> None:
    graph = _graph()
    graph["3"]["inputs"]["model"] = ["20", 0]
    graph["20"] = {"class_type": "ModelMergeSimple", "inputs": {
        "model1": ["4", 0], "model2": ["21", 0], "ratio": 0.5}}
    graph["21"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "other.ckpt"}}
    record = read(graph)
    assert "model" not in record.fields  # two models: neither is "the" model
    assert record.fields["seed"] == 156680208700286


def test_pipes_are_followed_to_the_node_that_built_them() -> None:
    graph = _graph()
    graph["20"] = {"class_type": "ToBasicPipe", "inputs": {
        "model": ["4", 0], "clip": ["4", 1], "vae": ["4", 2], "positive": ["6", 0],
        "negative": ["7", 0]}}
    graph["21"] = {"class_type": "FromBasicPipe", "inputs": {"basic_pipe": ["20", 0]}}
    graph["3"]["inputs"].update({"model": ["21", 0], "positive": ["21", 3],
                                 "negative": ["21", 4]})
    record = read(graph)
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"
    assert record.fields["prompt"] == POSITIVE.strip()
    assert record.fields["negative_prompt"] == NEGATIVE


def test_primitive_values_and_computed_values() -> None:
    graph = _graph()
    graph["3"]["inputs"]["steps"] = ["20", 0]
    graph["20"] = {"class_type": "PrimitiveInt", "inputs": {"value": 33}}
    graph["3"]["inputs"]["seed"] = ["21", 0]
    graph["21"] = {"class_type": "SimpleMath+", "inputs": {"value": "a*2", "a": ["22", 0]}}
    graph["22"] = {"class_type": "PrimitiveInt", "inputs": {"value": 50}}
    graph["3"]["inputs"]["cfg"] = ["23", 0]
    graph["23"] = {"class_type": "MathExpression|pysssss", "inputs": {
        "expression": "a + b", "a": ["22", 0], "b": ["20", 0]}}
    record = read(graph)
    assert record.fields["steps"] == 33
    assert "seed" not in record.fields and "cfg_scale" not in record.fields  # computed


def test_combined_conditioning_leaves_the_prompt_out() -> None:
    graph = _graph()
    graph["3"]["inputs"]["positive"] = ["20", 0]
    graph["20"] = {"class_type": "ConditioningCombine", "inputs": {
        "conditioning_1": ["6", 0], "conditioning_2": ["21", 0]}}
    graph["21"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "second", "clip": ["4", 1]}}
    record = read(graph)
    assert "prompt" not in record.fields and record.fields["negative_prompt"] == NEGATIVE


def test_the_save_node_decides_between_samplers() -> None:
    graph = _graph()
    # A second, unconnected-to-the-saver sampler with other values, listed first.
    graph["1"] = {"class_type": "KSampler", "inputs": {
        **graph["3"]["inputs"], "seed": 1, "steps": 5, "latent_image": ["5", 0]}}
    graph["2"] = {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}}
    graph["10"] = {"class_type": "VAEDecode", "inputs": {"samples": ["1", 0], "vae": ["4", 2]}}
    record = read(graph)
    assert record.fields["seed"] == 156680208700286 and record.details["sampler_node"] == "3"
    # Two save nodes fed by different samplers: which one made this file is unknown.
    graph["2"]["class_type"] = "SaveImage"
    record = read(graph)
    assert set(record.fields) == {"software"}
    assert any("different samplers" in w for w in record.warnings)


def test_two_samplers_without_a_save_node_are_not_guessed() -> None:
    graph = {k: v for k, v in _graph().items() if k not in ("8", "9")}
    graph["1"] = {"class_type": "KSampler", "inputs": {**graph["3"]["inputs"], "seed": 1}}
    record = read(graph)
    assert "seed" not in record.fields


def test_ui_graph_by_link_type_through_reroutes_and_bypassed_savers() -> None:
    workflow = json.loads(json.dumps(UI_GRAPH))
    # A reroute on the model link (frontend-only node: input "" typed "*", link typed MODEL).
    workflow["nodes"].append({"id": 11, "type": "Reroute",
                              "inputs": [{"name": "", "type": "*", "link": 11}]})
    workflow["links"][0] = [1, 11, 0, 3, 0, "MODEL"]
    workflow["links"].append([11, 4, 0, 11, 0, "MODEL"])
    record = read_generation_record(io.BytesIO(saved(workflow=workflow)))
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"
    assert record.fields["seed"] == 42


def test_graph_in_jpeg_user_comment_and_webp_image_description() -> None:
    wrapper = json.dumps({"prompt": API_GRAPH, "workflow": UI_GRAPH})
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x9286] = wrapper  # Pillow writes UserComment as given (ASCII/UTF-8)
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=exif)
    record = read_generation_record(io.BytesIO(out.getvalue()))
    assert record.source == "comfyui" and record.container == "jpeg"
    assert record.fields["seed"] == 156680208700286 and record.fields["width"] == 512
    # ImageDescription, the graphs as JSON text inside the JSON (as some savers do).
    exif = Image.Exif()
    exif[0x010E] = json.dumps({"prompt": json.dumps(API_GRAPH)})
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "WEBP", exif=exif)
    record = read_generation_record(io.BytesIO(out.getvalue()))
    assert record.source == "comfyui" and record.container == "webp"
    assert record.fields["prompt"] == POSITIVE.strip()
    unicode_comment = user_comment_exif(wrapper)
    record = read_generation_record(io.BytesIO(webp_with_chunks([(b"EXIF", unicode_comment)])))
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"


PARAMETERS = (f"{POSITIVE}\nNegative prompt: {NEGATIVE}\nSteps: 20, Sampler: Euler, "
              "CFG scale: 8.0, Seed: 156680208700286, Size: 512x512, Model: v1-5-pruned-emaonly")


def test_parameters_chunk_fills_fields_the_graph_does_not_state() -> None:
    graph = _graph()
    graph["3"]["inputs"]["steps"] = ["20", 0]
    graph["20"] = {"class_type": "MathExpression|pysssss", "inputs": {"expression": "10*2"}}
    data = png_texts({"parameters": PARAMETERS, "prompt": json.dumps(graph)})
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "comfyui"
    assert record.fields["steps"] == 20  # stated by the parameters text only
    assert record.fields["seed"] == 156680208700286 and record.fields["software"] == "ComfyUI"
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"  # the graph's, first
    assert record.details["formats"] == ["comfyui", "a1111"]
    conflicts = {c["field"]: c["values"] for c in record.details["conflicts"]}
    assert conflicts == {
        "model": {"comfyui": "v1-5-pruned-emaonly.safetensors", "a1111": "v1-5-pruned-emaonly"},
        "sampler": {"comfyui": "euler", "a1111": "Euler"},
    }


def test_both_passes_of_a_hires_fix_saved() -> None:
    # Each pass has its own SaveImage: whichever saved this file, the first pass is the same.
    graph = _graph()
    graph["10"] = {"class_type": "LatentUpscale", "inputs": {
        "upscale_method": "nearest-exact", "width": 1024, "height": 1024, "crop": "disabled",
        "samples": ["3", 0]}}
    graph["11"] = {"class_type": "KSampler", "inputs": {
        **graph["3"]["inputs"], "seed": 99, "steps": 10, "denoise": 0.5,
        "latent_image": ["10", 0]}}
    graph["12"] = {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["4", 2]}}
    graph["13"] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "hires",
                                                          "images": ["12", 0]}}
    record = read(graph)
    assert record.details["sampler_node"] == "3"
    assert record.fields["seed"] == 156680208700286 and record.fields["width"] == 512


def test_latents_composed_from_several_samplers_are_not_attributed() -> None:
    graph = _graph()
    graph["1"] = {"class_type": "KSampler", "inputs": {**graph["3"]["inputs"], "seed": 1}}
    graph["10"] = {"class_type": "LatentComposite", "inputs": {
        "samples_to": ["3", 0], "samples_from": ["1", 0], "x": 256, "y": 0, "feather": 0}}
    graph["11"] = {"class_type": "KSampler", "inputs": {
        **graph["3"]["inputs"], "seed": 0, "latent_image": ["10", 0], "denoise": 0.6}}
    graph["8"]["inputs"]["samples"] = ["11", 0]
    record = read(graph)
    assert "seed" not in record.fields and "steps" not in record.fields


def test_generated_text_and_random_values_are_not_their_templates() -> None:
    graph = _graph()
    graph["6"]["inputs"]["text"] = ["20", 0]
    graph["20"] = {"class_type": "DPRandomGenerator", "inputs": {
        "text": "a {red|blue} bird", "seed": 3, "autorefresh": "No"}}
    graph["3"]["inputs"]["steps"] = ["21", 0]
    graph["21"] = {"class_type": "Random Int (WAS)", "inputs": {"seed": 30}}
    record = read(graph)
    assert "prompt" not in record.fields and "steps" not in record.fields
    graph["20"] = {"class_type": "ImpactWildcardProcessor", "inputs": {
        "wildcard_text": "a {red|blue} bird", "populated_text": "a red bird", "mode": "fixed",
        "seed": 3}}
    assert read(graph).fields["prompt"] == "a red bird"


def test_flux_text_encoder_and_zeroed_negative() -> None:
    graph = _graph()
    graph["6"] = {"class_type": "CLIPTextEncodeFlux", "inputs": {
        "clip_l": "a neon fox", "t5xxl": "a neon fox", "guidance": 3.5, "clip": ["4", 1]}}
    graph["7"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["6", 0]}}
    record = read(graph)
    assert record.fields["prompt"] == "a neon fox"
    assert "negative_prompt" not in record.fields  # zeroed, not the positive prompt
    graph["6"]["inputs"]["clip_l"] = "neon, fox"
    assert read(graph).fields["prompt"] == "a neon fox\nneon, fox"


def test_ui_graph_read_when_the_api_graph_names_no_sampler() -> None:
    api = {"1": {"class_type": "workflow>txt2img group", "inputs": {}}}  # a group node
    record = read_generation_record(io.BytesIO(saved(api, UI_GRAPH)))
    assert record.fields["seed"] == 42 and record.fields["steps"] == 20
    assert record.warnings == ()
