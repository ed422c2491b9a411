"""The ComfyUI node "Save Image (Chronoseal)" (issue 14 §6), through ComfyUI's node interface
without ComfyUI: INPUT_TYPES, RETURN_TYPES, OUTPUT_NODE, and FUNCTION called with a numpy image
batch, against a running service (the fixture of test_client_stamp)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from integrations.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from service.evidence.bundle_check import check_bundle
from tests.e2e.test_client_stamp import Service, service  # noqa: F401 - the fixture
from tests.support.images import png_bytes

PROMPT_TEXT = "a harbour at dawn, oil on canvas"
STAMP_WAIT_S = 60


def _graph(source: str) -> dict[str, Any]:
    """An img2img API graph: LoadImage -> VAEEncode -> KSampler -> VAEDecode -> our node."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT_TEXT, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "LoadImage", "inputs": {"image": source}},
        "5": {"class_type": "VAEEncode", "inputs": {"pixels": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
            "latent_image": ["5", 0], "seed": 987654, "steps": 24, "cfg": 6.5,
            "sampler_name": "euler", "scheduler": "normal", "denoise": 0.6}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImageChronoseal", "inputs": {
            "images": ["7", 0], "filename_prefix": "harbour"}},
    }


def _stamped(service: Service, receipt_id: str) -> dict[str, Any]:  # noqa: F811
    headers = {"Authorization": f"Bearer {service.secret}"}
    deadline = time.monotonic() + STAMP_WAIT_S
    while True:
        receipt = requests.get(f"{service.url}/v1/stamps/{receipt_id}", headers=headers,
                               timeout=10).json()
        if receipt["status"] == "stamped" or time.monotonic() > deadline:
            return receipt
        time.sleep(0.1)


def test_node_interface():
    node = NODE_CLASS_MAPPINGS["SaveImageChronoseal"]
    assert NODE_DISPLAY_NAME_MAPPINGS["SaveImageChronoseal"] == "Save Image (Chronoseal)"
    types = node.INPUT_TYPES()
    assert types["required"]["images"][0] == "IMAGE"
    assert types["required"]["filename_prefix"][0] == "STRING"
    assert types["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert node.RETURN_TYPES == () and node.OUTPUT_NODE is True
    assert callable(getattr(node, node.FUNCTION))
    assert not any("key" in name.lower() for name in types["optional"])  # never in a PNG


def test_saves_like_saveimage_and_registers_hash_only(service: Service, tmp_path: Path,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOSEAL_SERVER", service.url)
    monkeypatch.setenv("CHRONOSEAL_API_KEY", service.secret)
    inputs, outputs = tmp_path / "input", tmp_path / "output"
    inputs.mkdir()
    source = png_bytes(8, 8, (200, 10, 10))
    (inputs / "source.png").write_bytes(source)
    graph, workflow = _graph("source.png"), {"nodes": [], "links": [], "version": 0.4}
    node = NODE_CLASS_MAPPINGS["SaveImageChronoseal"](output_dir=str(outputs),
                                                      input_dir=str(inputs))
    batch = np.random.default_rng(7).random((2, 8, 12, 3), dtype=np.float32)
    before = len(service.posts())
    result = getattr(node, node.FUNCTION)(images=batch, filename_prefix="harbour",
                                          session="comfy-evening", prompt=graph,
                                          extra_pnginfo={"workflow": workflow})

    saved = result["ui"]["images"]
    assert [s["filename"] for s in saved] == ["harbour_00001_.png", "harbour_00002_.png"]
    for number, item in enumerate(saved):
        with Image.open(outputs / item["filename"]) as picture:
            assert picture.size == (12, 8)
            assert json.loads(picture.text["prompt"]) == graph  # as SaveImage writes them
            assert json.loads(picture.text["workflow"]) == workflow
            expected = np.clip(255.0 * batch[number], 0, 255).astype(np.uint8)
            assert np.array_equal(np.asarray(picture), expected)

    # Hash-only: two JSON registrations, no image bytes sent.
    posts = service.posts()[before:]
    assert len(posts) == 2 and all(p[2] == "application/json" for p in posts)
    notes = result["ui"]["chronoseal"]
    assert all("receipt" in n for n in notes), notes
    source_digest = hashlib.sha256(source).hexdigest()
    for item, note in zip(saved, notes, strict=True):
        path = outputs / item["filename"]
        assert note["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert json.loads((outputs / (item["filename"] + ".chronoseal.json")).read_text())[
            "receipt"] == note["receipt"]
        receipt = _stamped(service, note["receipt"])
        assert receipt["status"] == "stamped", receipt
        manifest = receipt["manifest"]
        assert manifest["image"]["sha256"] == note["sha256"]
        assert manifest["parents"] == [{"image_sha256": source_digest}]  # the LoadImage input
        assert manifest["session"] == "comfy-evening"
        generation = manifest["generation"]
        assert generation["raw"]["prompt"] == graph  # the graphs are the record
        assert generation["prompt"] == PROMPT_TEXT and generation["seed"] == 987654
        bundle = requests.get(f"{service.url}/v1/stamps/{note['receipt']}/bundle", timeout=10,
                              headers={"Authorization": f"Bearer {service.secret}"}).content
        assert check_bundle(bundle, image_sha256=note["sha256"]).valid

    # The next run numbers on, as SaveImage does.
    again = getattr(node, node.FUNCTION)(images=batch[:1], filename_prefix="harbour",
                                         prompt=graph)
    assert again["ui"]["images"][0]["filename"] == "harbour_00003_.png"


def test_unreachable_server_saves_and_says_so(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOSEAL_SERVER", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("CHRONOSEAL_API_KEY", "cs_test")
    node = NODE_CLASS_MAPPINGS["SaveImageChronoseal"](output_dir=str(tmp_path / "out"),
                                                      input_dir=str(tmp_path))
    graph = _graph("../../etc/passwd")  # outside the input folder: never read
    result = node.save_images(np.zeros((1, 4, 4, 3), dtype=np.float32), prompt=graph)
    assert (tmp_path / "out" / "ComfyUI_00001_.png").is_file()
    assert "error" in result["ui"]["chronoseal"][0]
    assert node._parents(graph) == []  # noqa: SLF001
