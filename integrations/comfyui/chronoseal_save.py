"""Save Image (Chronoseal): ComfyUI's SaveImage, plus a hash-only registration of each image.

Each image is written as ComfyUI writes it (PNG with `prompt` and `workflow` text chunks, the
same file names), then its SHA-256 is registered with the Chronoseal server named by
$CHRONOSEAL_SERVER with the key in $CHRONOSEAL_API_KEY (never a widget: widgets are saved
into every PNG's workflow). The record sent is the prompt and workflow graphs; the parents are
the SHA-256 of each file the graph's LoadImage nodes read (found in ComfyUI's input folder),
so the manifest links the image to its img2img source. Only digests and the graphs leave the
machine. The receipt id is written beside the image (NAME.chronoseal.json); `chronoseal stamp
--hash-only` over the folder later fetches the bundles.

Standard library plus numpy and Pillow (both ComfyUI's own), so the folder works without
Chronoseal installed. A registration that fails never fails the workflow: the image is saved,
and the node's UI output says what went wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

SERVER_ENV, KEY_ENV, SESSION_ENV = "CHRONOSEAL_SERVER", "CHRONOSEAL_API_KEY", "CHRONOSEAL_SESSION"
DEFAULT_SERVER = "http://127.0.0.1:8318"  # `chronoseal up`
REQUEST_TIMEOUT_S = 15  # one small JSON request; a slow server must not hang the queue long
COMPRESS_LEVEL = 4  # SaveImage's
MAX_PARENTS = 16  # the server's bound (usecases.lineage.MAX_PARENTS)
MAX_ANSWER_BYTES = 1024 * 1024  # a registration's answer is a few hundred bytes
# service/evidence/records/comfyui.py LOAD_IMAGE_CLASSES: nodes whose `image` input names a
# file of the input folder (mirrored here: this folder must work without Chronoseal).
LOAD_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask", "LoadImageOutput"})
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")
RECEIPT_SUFFIX = ".chronoseal.json"

log = logging.getLogger(__name__)


def _folder_paths() -> Any | None:
    """ComfyUI's folder_paths module when running inside ComfyUI, else None."""
    try:
        import folder_paths  # type: ignore[import-not-found]  # noqa: PLC0415 - ComfyUI only
    except ImportError:
        return None
    return folder_paths


class SaveImageChronoseal:
    """The node: ComfyUI's node interface (INPUT_TYPES, RETURN_TYPES, FUNCTION, OUTPUT_NODE)."""

    RETURN_TYPES: tuple[str, ...] = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = "Saves the images and registers each with Chronoseal (hash-only)."

    def __init__(self, output_dir: str | None = None, input_dir: str | None = None) -> None:
        paths = _folder_paths()
        self.output_dir = output_dir or (paths.get_output_directory() if paths else "output")
        self.input_dir = input_dir or (paths.get_input_directory() if paths else "input")
        self.type = "output"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save and register."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI"}),
            },
            "optional": {
                "session": ("STRING", {"default": "", "tooltip": "Working session id "
                                       f"(default ${SESSION_ENV}); groups the iterations."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def save_images(self, images: Any, filename_prefix: str = "ComfyUI", session: str = "",
                    prompt: dict[str, Any] | None = None,
                    extra_pnginfo: dict[str, Any] | None = None) -> dict[str, Any]:
        """Save each image of the batch ([B, H, W, C] floats in 0..1) and register it."""
        folder, stem, counter, subfolder = self._target(filename_prefix, images)
        parents = self._parents(prompt)
        session = session.strip() or os.environ.get(SESSION_ENV, "")
        results, receipts = [], []
        for number, image in enumerate(images):
            array = image.cpu().numpy() if hasattr(image, "cpu") else np.asarray(image)
            picture = Image.fromarray(np.clip(255.0 * array, 0, 255).astype(np.uint8))
            info = PngInfo()
            if prompt is not None:
                info.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                info.add_text(key, json.dumps(value))
            name = f"{stem.replace('%batch_num%', str(number))}_{counter:05}_.png"
            path = Path(folder) / name
            picture.save(path, pnginfo=info, compress_level=COMPRESS_LEVEL)
            results.append({"filename": name, "subfolder": subfolder, "type": self.type})
            receipts.append(self._register(path, prompt, extra_pnginfo, parents, session))
            counter += 1
        return {"ui": {"images": results, "chronoseal": receipts}}

    def _target(self, prefix: str, images: Any) -> tuple[str, str, int, str]:
        """(folder, file stem, first counter, subfolder), as SaveImage numbers its files."""
        paths = _folder_paths()
        if paths is not None:
            height, width = images[0].shape[0], images[0].shape[1]
            folder, stem, counter, subfolder, _ = paths.get_save_image_path(
                prefix, self.output_dir, width, height)
            return folder, stem, counter, subfolder
        subfolder, _, stem = prefix.replace("\\", "/").rpartition("/")
        folder = Path(self.output_dir) / subfolder
        if ".." in Path(subfolder).parts or Path(subfolder).is_absolute():
            raise ValueError("filename_prefix must stay inside the output folder")
        folder.mkdir(parents=True, exist_ok=True)
        taken = [int(m[1]) for p in folder.iterdir()
                 if (m := re.fullmatch(re.escape(stem) + r"_(\d{5})_\.png", p.name))]
        return str(folder), stem, max(taken, default=0) + 1, subfolder

    def _parents(self, prompt: dict[str, Any] | None) -> list[str]:
        """SHA-256 of each file the graph's LoadImage nodes read, when it can be found."""
        digests: list[str] = []
        for node in (prompt or {}).values():
            if not isinstance(node, dict) or node.get("class_type") not in LOAD_IMAGE_CLASSES:
                continue
            image = (node.get("inputs") or {}).get("image")
            path = self._input_path(image) if isinstance(image, str) else None
            if path is not None and path.is_file():
                digest = _sha256(path)
                if digest not in digests:
                    digests.append(digest)
        return digests[:MAX_PARENTS]

    def _input_path(self, name: str) -> Path | None:
        """The file a LoadImage name means, inside ComfyUI's folders only."""
        paths = _folder_paths()
        if paths is not None:
            return Path(paths.get_annotated_filepath(name))
        match = _ANNOTATION.match(name)
        base = Path(self.output_dir if match and match[2] == "output" else self.input_dir)
        candidate = (base / (match[1] if match else name)).resolve()
        return candidate if candidate.is_relative_to(base.resolve()) else None

    def _register(self, path: Path, prompt: dict[str, Any] | None,
                  extra_pnginfo: dict[str, Any] | None, parents: list[str],
                  session: str) -> dict[str, Any]:
        digest = _sha256(path)
        record: dict[str, Any] = {}
        if prompt is not None:
            record["prompt"] = prompt
        if extra_pnginfo and "workflow" in extra_pnginfo:
            record["workflow"] = extra_pnginfo["workflow"]
        body: dict[str, Any] = {"sha256": digest, "metadata": record, "parents": parents}
        if session:
            body["session"] = session
        try:
            answer = _post(body)
            if answer.get("type", "").endswith(":metadata-out-of-bounds") and "workflow" in record:
                # A very large UI graph: the API graph alone still names every value.
                answer = _post({**body, "metadata": {"prompt": prompt} if prompt else {}})
        except (OSError, ValueError) as exc:
            log.warning("Chronoseal: %s not registered: %s", path.name, exc)
            return {"filename": path.name, "sha256": digest, "error": str(exc)}
        if "id" not in answer:
            log.warning("Chronoseal: %s refused: %s", path.name, answer.get("detail"))
            return {"filename": path.name, "sha256": digest,
                    "error": str(answer.get("detail") or answer.get("title"))}
        note = {"filename": path.name, "sha256": digest, "receipt": answer["id"],
                "manifest_digest": answer.get("manifest_digest"), "parents": parents,
                "server": _server()}
        try:
            path.with_name(path.name + RECEIPT_SUFFIX).write_text(json.dumps(note, indent=2)
                                                                  + "\n")
        except OSError as exc:  # registered all the same: the UI output names the receipt
            log.warning("Chronoseal: %s: receipt note not written: %s", path.name, exc)
        return note


def _server() -> str:
    server = os.environ.get(SERVER_ENV, DEFAULT_SERVER).rstrip("/")
    if not server.startswith(("http://", "https://")):  # never file: or another scheme
        raise ValueError(f"{SERVER_ENV} must be an http(s) URL")
    return server


def _post(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/stamps; the answer (a receipt or a problem) as a dict. Raises OSError when the
    server cannot be reached, ValueError without a key."""
    key = os.environ.get(KEY_ENV, "")
    if not key:
        raise ValueError(f"no API key: set {KEY_ENV} for ComfyUI")
    request = urllib.request.Request(  # noqa: S310 - _server() allows http(s) only
        _server() + "/v1/stamps", data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json",
            "Idempotency-Key": "comfyui:" + hashlib.sha256(
                json.dumps(body, sort_keys=True).encode()).hexdigest()})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
            return dict(json.loads(response.read(MAX_ANSWER_BYTES)))
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 401:
            raise OSError(f"HTTP {exc.code} from {_server()}") from exc
        return dict(json.loads(exc.read(MAX_ANSWER_BYTES) or b"{}"))


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
