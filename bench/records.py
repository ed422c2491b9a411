"""Generation-record reader: time per file, and fields right on a held-out set of real files.

Two sets. `built`: one file per supported layout, made here the way each tool writes it (the
same builders as the tests), timed over many rounds. `heldout`: the sample images that the
sd-parsers package (MIT) ships with its tests, fetched with `pip download sd-parsers==0.6` into
bench/.cache (never committed) and scored against the values its own tests expect; they were
not used to write the reader's rules. A file is "right" when every core field the tool
stated (prompt, seed, steps, sampler, cfg, model) is read and equal; "wrong" when any value read
differs from the expected one. The last line printed is JSON.

    .venv/bin/python bench/records.py [--rounds 200] [--no-heldout]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.evidence.generation import same_value  # noqa: E402
from service.evidence.records import read_generation_record  # noqa: E402
from tests.support import records as build  # noqa: E402

CACHE = REPO / "bench" / ".cache" / "records"
HELDOUT_PACKAGE = "sd-parsers==0.6"
CORE = ("prompt", "seed", "steps", "sampler", "cfg_scale", "model")
A1111 = ("a fox\nNegative prompt: blur\nSteps: 20, Sampler: Euler a, Schedule type: Karras, "
         "CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: v1-5, "
         "Version: v1.10.1")
COMFY = {"3": {"class_type": "KSampler", "inputs": {
    "seed": 7, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
    "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
    "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512,
                                                        "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blur", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}

# Expected core values of the held-out files, from sd-parsers' tests; None: the file states no
# single value (a Dream line names no model; an area-composed prompt is several prompts).
HELDOUT: dict[str, dict[str, Any]] = {
    "AUTOMATIC1111/automatic1111_cropped.png": {
        "prompt": "photo of a duck", "seed": 235284042, "steps": 15, "sampler": "UniPC",
        "cfg_scale": 5, "model": "realistic_realisticVisionV20_v20"},
    "AUTOMATIC1111/automatic1111_stealth.png": {
        "prompt": "a circle", "seed": 2015833630, "steps": 20, "sampler": "Euler",
        "cfg_scale": 7, "model": "realisticVisionV51_v51VAE"},
    "ComfyUI/img2img_cropped.png": {
        "prompt": "photograph of victorian woman with wings, sky clouds, meadow grass",
        "seed": 280823642470253, "steps": 20, "sampler": "sample_dpmpp_2m", "cfg_scale": 8.0,
        "model": "v1-5-pruned-emaonly.ckpt"},
    "ComfyUI/night_evening_day_morning_cropped.png": {
        "prompt": None, "seed": 335608130539327, "steps": 13, "sampler": "dpmpp_sde",
        "cfg_scale": 8.5, "model": "Anything-V3.0.ckpt"},
    "Fooocus/fooocus1_cropped.png": {
        "prompt": "a smiling goldfish", "seed": "6952411511246973023", "steps": 30,
        "sampler": "dpmpp_2m_sde_gpu", "cfg_scale": 4, "model": "juggernautXL_v8Rundiffusion"},
    "InvokeAI/invokeai_dream1.png": {
        "seed": 2980747362, "steps": 50, "sampler": "k_lms", "cfg_scale": 5.0, "model": None},
    "InvokeAI/invokeai_imeta1.png": {
        "prompt": "digital artwork, oil painting. painterly brushstrokes, holidays,",
        "seed": 3293022630, "steps": 35, "sampler": "euler", "cfg_scale": 8.0,
        "model": "juggernautXL"},
    "InvokeAI/invokeai_sdmeta1.png": {
        "seed": 2980747362, "steps": 50, "sampler": "k_lms", "cfg_scale": 5,
        "model": "deliberateForInvoke_v08"},
    "NovelAI/novelai1_cropped.png": {
        "prompt": "masterpiece, best quality,  cat, space, icon", "seed": 2253955223,
        "steps": 50, "sampler": "k_euler_ancestral", "cfg_scale": 10.0,
        "model": "Stable Diffusion"},
}
HELDOUT["AUTOMATIC1111/automatic1111_cropped.jpg"] = HELDOUT[
    "AUTOMATIC1111/automatic1111_cropped.png"]
_DREAM_PROMPT = ("professional full body photo of young woman, hyper long brunette hair, "
                 "elegant hair, wearing a bikini top and asymmetric short skirt, curvy body, "
                 "long legs, (imperfect skin), detailed skin, intense freckles, super long eye "
                 "lashes, at night, outside, city background, 8k ultra detailed, realistic, "
                 "high quality, film grain, low contrast")
for _name in ("InvokeAI/invokeai_dream1.png", "InvokeAI/invokeai_sdmeta1.png"):
    HELDOUT[_name]["prompt"] = _DREAM_PROMPT


def built_files() -> dict[str, bytes]:
    """One file per layout the reader supports, as the tools write them."""
    swarm = {"sui_image_params": {"prompt": "a fox", "model": "sdxl", "seed": 7, "steps": 20,
                                  "cfgscale": 7, "width": 512, "height": 512,
                                  "sampler": "euler", "swarm_version": "0.9.5"}}
    return {
        "a1111.png": build.png_texts({"parameters": A1111}),
        "a1111.jpg": build.jpeg_with_segments([(0xE1, build.user_comment_exif(A1111))]),
        "a1111-stealth.png": build.stealth_png(A1111.encode(), size=(48, 48)),
        "comfyui.png": build.png_texts({"prompt": json.dumps(COMFY), "parameters": A1111}),
        "comfyui.webp": build.webp_with_chunks([(b"EXIF", build.user_comment_exif(
            json.dumps({"prompt": COMFY})))]),
        "swarmui.png": build.png_texts({"parameters": json.dumps(swarm)}),
        "dream.png": build.png_texts({"Dream": '"a fox" -s 20 -S 7 -W 512 -H 512 -C 7 -A k_lms'}),
        "novelai.png": build.png_texts({"Software": "NovelAI", "Description": "a fox",
                                        "Source": "Stable Diffusion XL C1E1DE52", "Comment":
                                        json.dumps({"steps": 28, "scale": 5, "seed": 7,
                                                    "sampler": "k_euler", "uc": "blur"})}),
        "plain.jpg": build.jpeg_with_segments([]),
    }


def time_files(files: dict[str, bytes], rounds: int) -> list[float]:
    per_file = []
    for data in files.values():
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            read_generation_record(io.BytesIO(data))
            times.append((time.perf_counter() - started) * 1000)
        per_file.append(statistics.median(times))
    return per_file


def fetch_heldout() -> Path:
    root = CACHE / "sd_parsers-0.6" / "tests" / "resources" / "parsers"
    if not root.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", HELDOUT_PACKAGE, "-d", str(CACHE)], check=True)
        with tarfile.open(CACHE / "sd_parsers-0.6.tar.gz") as archive:
            members = [m for m in archive.getmembers() if "/tests/resources/" in m.name]
            archive.extractall(CACHE, members=members, filter="data")
    return root


def score(root: Path, rounds: int) -> dict[str, Any]:
    counts = {"right": 0, "partly": 0, "missed": 0, "wrong": 0}
    files, wrong = {}, []
    for name, expected in HELDOUT.items():
        data = (root / name).read_bytes()
        files[name] = data
        fields = read_generation_record(io.BytesIO(data)).fields
        stated = {k: v for k, v in expected.items() if v is not None}
        bad = [k for k in CORE if k in fields and expected.get(k) is not None
               and not same_value(fields[k], expected[k])]
        bad += [k for k in CORE if k in fields and k in expected and expected[k] is None]
        got = [k for k in stated if k in fields and k not in bad]
        if bad:
            counts["wrong"] += 1
            wrong.append({"file": name, "fields": bad})
        elif len(got) == len(stated):
            counts["right"] += 1
        else:
            counts["partly" if got else "missed"] += 1
    per_file = time_files(files, max(rounds // 10, 5))
    return {"files": len(HELDOUT), **counts, "wrong_values": wrong,
            "median_ms": round(statistics.median(per_file), 3),
            "max_ms": round(max(per_file), 3)}


PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--rounds", type=int, default=200, help="reads per built file")
PARSER.add_argument("--no-heldout", action="store_true", help="skip the held-out download")


def main() -> None:
    args = PARSER.parse_args()
    per_file = time_files(built_files(), args.rounds)
    result: dict[str, Any] = {"built": {"files": len(per_file),
                                        "median_ms": round(statistics.median(per_file), 3),
                                        "max_ms": round(max(per_file), 3)}}
    if not args.no_heldout:
        result["heldout"] = score(fetch_heldout(), args.rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
