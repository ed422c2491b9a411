"""`chronoseal stamp --hash-only --embed` on the machine that runs the service: the image never
leaves it, a copy with Content Credentials is signed here with the server's key, validates in
c2pa-python with the published root trusted, and is registered by digest as a child."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import requests
from sqlalchemy import select

from service.storage.tables import receipts
from tests.e2e.test_client_stamp import CLI, REPO, RUN_TIMEOUT_S, Service, service  # noqa: F401
from tests.support.c2pa_files import change_one_pixel, created_by, plain_image


def _read(data: bytes, anchors: str) -> tuple[dict[str, object], str]:
    import c2pa

    context = c2pa.Context(c2pa.Settings.from_dict(
        {"trust": {"trust_anchors": anchors}, "verify": {"ocsp_fetch": False}}))
    with c2pa.Reader("image/png", io.BytesIO(data), context=context) as reader:
        report = json.loads(reader.json())
        return report["manifests"][report["active_manifest"]], str(reader.get_validation_state())


def test_hash_only_embed_signs_locally_and_registers_the_copy(
        service: Service, tmp_path: Path) -> None:  # noqa: F811
    root = requests.get(f"{service.url}/c2pa/root.pem", timeout=10).text  # made on first use
    folder = tmp_path / "art"
    folder.mkdir()
    image = folder / "fox.png"
    image.write_bytes(created_by("png", "Some Generator", "3.0",
                                 source=plain_image("png", size=(96, 64))))
    env = {**service.env.env, "CHRONOSEAL_API_KEY": service.secret}
    done = subprocess.run([*CLI, "stamp", "--server", service.url, "--wait", "60",
                           "--hash-only", "--embed", str(image)], env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    copy_path = folder / "fox.c2pa.png"
    assert f"Content Credentials copy {copy_path} registered as " in done.stdout
    child_id = done.stdout.split(" registered as ")[1].split(")")[0].strip()
    assert all(p[2] == "application/json" for p in service.posts())  # never the image

    copy = copy_path.read_bytes()
    anchors = root + service.tsa.roots.read_text()
    active, state = _read(copy, anchors)
    assert state == "Trusted"
    labels = {a["label"]: a["data"] for a in active["assertions"]}  # type: ignore[attr-defined]
    assert labels["org.chronoseal.registration"]["copy_of"]["image_sha256"] == (
        hashlib.sha256(image.read_bytes()).hexdigest())
    assert "batch_head" in labels["org.chronoseal.registration"]
    assert _read(change_one_pixel("png", copy), anchors)[1] == "Invalid"

    with service.env.services.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(receipts.c.id, receipts.c.image_sha256,
                                                     receipts.c.manifest_jcs))}
    assert rows[child_id].image_sha256 == hashlib.sha256(copy).hexdigest()
    original_id = labels["org.chronoseal.registration"]["receipt_id"]
    child_manifest = json.loads(rows[child_id].manifest_jcs)
    child = child_manifest["generation"]
    link = child["sources"]["file"]["provenance"]["c2pa"]["chronoseal_registration"]
    assert link["receipt_id"] == original_id  # the copy's C2PA names its original
    # ... and so does the child's manifest, as a parent (the iteration history).
    original_digest = hashlib.sha256(rows[original_id].manifest_jcs).hexdigest()
    assert child_manifest["parents"] == [{"receipt": original_id,
                                          "manifest_sha256": original_digest}]
    original = json.loads(rows[original_id].manifest_jcs)["generation"]
    # The client read the original's C2PA before registering it: validated, recorded.
    assert original["sources"]["file"]["read_by"] == "client"
    provenance = original["sources"]["file"]["provenance"]["c2pa"]
    assert provenance["claim_generator"] == "Some Generator 3.0"
    assert provenance["validation"]["hard_binding"] == "valid"


def test_embed_without_the_servers_keys_is_unusable_input(
        service: Service, tmp_path: Path) -> None:  # noqa: F811
    image = tmp_path / "a.png"
    image.write_bytes(plain_image("png"))
    env = {**service.env.env, "CHRONOSEAL_API_KEY": service.secret,
           "CHRONOSEAL_DATA_DIR": str(tmp_path / "elsewhere")}
    done = subprocess.run([*CLI, "stamp", "--server", service.url, "--hash-only", "--embed",
                           str(image)], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, cwd=REPO)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no C2PA signing keys" in done.stderr
    assert not (tmp_path / "elsewhere" / "c2pa").exists()  # the client never makes keys
