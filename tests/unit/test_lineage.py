"""The one parser of a registration's lineage fields, and what ComfyUI graphs contribute."""

from __future__ import annotations

import pytest

from service.errors import InvalidInputError
from service.evidence.generation import normalize_request_metadata
from service.evidence.records.comfyui import api_graph, load_image_inputs
from service.evidence.records.comfyui_reader import request_fields
from service.usecases.lineage import MAX_SESSION_CHARS, Lineage, read_lineage

RECEIPT = "rcp_01M8TCEWT0WSDDVPRPXZY8D2JF"
DIGEST = "AB" * 32


def test_json_and_form_spellings_agree():
    as_json = read_lineage({"session": "s1", "parents": [RECEIPT, DIGEST],
                            "private_record": True, "store_disclosure": False})
    as_form = read_lineage({"session": "s1", "parents": f" {RECEIPT} , {DIGEST}",
                            "private_record": "true", "store_disclosure": "off"}, text=True)
    as_form_json = read_lineage({"session": "s1", "parents": f'["{RECEIPT}", "{DIGEST}"]',
                                 "private_record": "1"}, text=True)
    assert as_json == as_form == as_form_json
    assert as_json.parents == (RECEIPT, DIGEST.lower())  # digests lower-cased
    assert read_lineage({}) == Lineage()
    assert read_lineage({"parents": [DIGEST, DIGEST.lower()]}).parents == (DIGEST.lower(),)


@pytest.mark.parametrize("fields", [
    {"session": ""}, {"session": "x" * (MAX_SESSION_CHARS + 1)}, {"session": "-x"},
    {"session": "a/b"}, {"session": None}, {"parents": None}, {"parents": {"a": 1}},
    {"parents": [1]}, {"parents": ["rcp_short"]}, {"private_record": "true"},
    {"private_record": 1}, {"commitments": {"prompt": "00" * 32}},
    {"private_record": True, "commitments": {"prompt": "xyz"}},
    {"private_record": True, "commitments": {"../x": "00" * 32}},
    {"private_record": True, "commitments": {}},
])
def test_bad_fields_are_refused(fields):
    with pytest.raises(InvalidInputError):
        read_lineage(fields)


def test_form_booleans_and_json_text_are_checked():
    with pytest.raises(InvalidInputError):
        read_lineage({"private_record": "perhaps"}, text=True)
    with pytest.raises(InvalidInputError):
        read_lineage({"parents": "[not json"}, text=True)


GRAPH = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["1", 1]}},
    "3": {"class_type": "LoadImage", "inputs": {"image": "fox.png"}},
    "4": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png [output]"}},
    "5": {"class_type": "LoadImage", "inputs": {"image": "fox.png"}},
    "6": {"class_type": "VAEEncode", "inputs": {"pixels": ["3", 0], "vae": ["1", 2]}},
    "7": {"class_type": "KSampler", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["6", 0],
        "seed": 11, "steps": 9, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 0.5}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
    "9": {"class_type": "SaveImageChronoseal", "inputs": {"images": ["8", 0]}},
}


def test_load_image_inputs_in_node_order_once():
    graph = api_graph(GRAPH)
    assert graph is not None
    assert load_image_inputs(graph) == ["fox.png", "mask.png [output]"]


def test_comfyui_graph_in_request_metadata_gives_the_fields():
    generation = normalize_request_metadata({"prompt": GRAPH}, request_fields)
    assert generation["prompt"] == "a red fox" and generation["seed"] == 11
    assert generation["steps"] == 9 and generation["raw"] == {"prompt": GRAPH}
    # The request's own flat fields win over the graph's.
    assert normalize_request_metadata({"prompt": GRAPH, "seed": 5}, request_fields)["seed"] == 5
    # Not a graph: nothing read, as before.
    assert request_fields({"prompt": "plain text"}) == {}
