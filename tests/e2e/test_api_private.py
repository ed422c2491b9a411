"""Private records (issue 14 §4): salted commitments in the manifest, disclosure.json kept by
the creator, selective disclosure, and verify.py checking each revealed value."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.cli import main
from service.evidence.bundle import with_disclosure
from service.evidence.bundle_check import check_bundle
from service.evidence.disclosure import SALT_BYTES, commit, commit_generation, disclosure_document
from service.evidence.generation import normalize_request_metadata
from service.evidence.manifest import canonicalize
from service.storage.tables import receipts
from tests.support.images import png_bytes

PROMPT = "a secret lighthouse, in the style of nobody"
RECORD = {"prompt": PROMPT, "seed": 424242, "model": "hidden-model-v3"}
VERIFY_TIMEOUT_S = 120


def _verify_py(bundle: bytes, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_bytes(bundle)
    (tmp_path / "verify.py").write_bytes(zipfile.ZipFile(path).read("verify.py"))
    return subprocess.run([sys.executable, "-I", str(tmp_path / "verify.py"), "--bundle",
                           str(path)], capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S,
                          cwd=tmp_path, check=False)


def _stored_row(api: Any, receipt_id: str) -> bytes:
    """Every column of the receipt's row, as bytes: what the server keeps."""
    with api.services.engine.connect() as conn:
        row = conn.execute(select(receipts).where(receipts.c.id == receipt_id)).mappings().one()
    return b"|".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def _replace(bundle: bytes, name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, data if info.filename == name else source.read(info))
    return out.getvalue()


def test_commitment_bytes_are_salt_then_jcs():
    generation = normalize_request_metadata(RECORD)
    private, openings = commit_generation(generation)
    assert private["private"] is True and set(private["commitments"]) == set(generation)
    opening = openings["seed"]
    assert len(opening.salt) == SALT_BYTES
    expected = hashlib.sha256(opening.salt + canonicalize(424242)).hexdigest()
    assert private["commitments"]["seed"] == commit(opening.salt, b"424242") == expected
    # Fresh salts: the same value twice gives unrelated commitments.
    again, _ = commit_generation(generation)
    assert again["commitments"]["seed"] != private["commitments"]["seed"]


def test_server_committed_record_reveals_chosen_fields_only(worker_api, tmp_path):
    api = worker_api
    response = api.client.post("/v1/stamps", headers=api.auth, json={
        "sha256": "ab" * 32, "metadata": RECORD, "private_record": True})
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    disclosure = answer["disclosure"]
    assert disclosure["fields"]["prompt"]["value"] == PROMPT
    receipt_id = answer["id"]
    api.run()
    manifest = api.client.get(f"/v1/stamps/{receipt_id}", headers=api.auth).get_json()["manifest"]
    assert manifest["generation"]["private"] is True
    assert set(manifest["generation"]["commitments"]) >= {"prompt", "seed", "model", "raw"}
    # Unreadable on the server: no value in the manifest, the receipt's row or its bundle.
    assert PROMPT.encode() not in _stored_row(api, receipt_id)
    assert b"hidden-model-v3" not in _stored_row(api, receipt_id)
    served = api.client.get(f"/v1/stamps/{receipt_id}/bundle", headers=api.auth).data
    assert "disclosure.json" not in _members(served)
    assert "## Private record" in _members(served)["VERIFY.md"].decode()
    assert all(PROMPT.encode() not in data for data in _members(served).values())

    creator = with_disclosure(served, json.dumps(disclosure).encode())
    full = _verify_py(creator, tmp_path, "creator.zip")
    assert full.returncode == 0, full.stdout
    assert f"[REVEALED] prompt = {json.dumps(PROMPT)}" in full.stdout

    # chronoseal disclose: only prompt and seed; the model stays hidden.
    (tmp_path / "creator.zip").write_bytes(creator)
    out = tmp_path / "court.zip"
    assert main(["disclose", str(tmp_path / "creator.zip"), "--fields", "prompt,seed",
                 "-o", str(out)]) == 0
    court = out.read_bytes()
    opened = json.loads(_members(court)["disclosure.json"])
    assert sorted(opened["fields"]) == ["prompt", "seed"]
    assert all(b"hidden-model-v3" not in data for data in _members(court).values())
    shown = _verify_py(court, tmp_path, "court.zip")
    assert shown.returncode == 0, shown.stdout
    assert "[REVEALED] seed = 424242" in shown.stdout
    assert "not revealed here: " in shown.stdout and "model" in shown.stdout
    assert check_bundle(court).valid

    # A revealed value changed (its text and its parsed form alike) fails.
    forged = json.loads(_members(court)["disclosure.json"])
    forged["fields"]["seed"].update(jcs="424243", value=424243)
    bad = _replace(court, "disclosure.json", json.dumps(forged).encode())
    run = _verify_py(bad, tmp_path, "forged.zip")
    assert run.returncode == 1 and "[FAIL] disclosure: seed" in run.stdout, run.stdout
    assert not check_bundle(bad).valid
    # The shown value differing from the committed text fails too.
    forged["fields"]["seed"].update(jcs="424242", value=1)
    run = _verify_py(_replace(court, "disclosure.json", json.dumps(forged).encode()), tmp_path,
                     "shown.zip")
    assert run.returncode == 1, run.stdout
    # Asking for a field the record does not have is unusable input.
    assert main(["disclose", str(tmp_path / "creator.zip"), "--fields", "sampler_x",
                 "-o", str(tmp_path / "x.zip")]) == 2


def test_hash_only_private_sends_only_commitments(worker_api, tmp_path):
    api = worker_api
    private, openings = commit_generation(normalize_request_metadata(RECORD))
    body = {"sha256": "cd" * 32, "private_record": True, "commitments": private["commitments"]}
    assert PROMPT not in json.dumps(body)  # what leaves the machine
    response = api.client.post("/v1/stamps", headers=api.auth, json=body)
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert "disclosure" not in answer  # the server never had the values
    api.run()
    served = api.client.get(f"/v1/stamps/{answer['id']}/bundle", headers=api.auth).data
    disclosure = disclosure_document(answer["manifest_digest"], openings)
    run = _verify_py(with_disclosure(served, disclosure), tmp_path, "local.zip")
    assert run.returncode == 0, run.stdout
    assert PROMPT.encode() not in _stored_row(api, answer["id"])

    bad = [{"commitments": private["commitments"]},  # without private_record
           {"private_record": True, "commitments": {"prompt": "xyz"}},
           {"private_record": True, "commitments": private["commitments"], "metadata": RECORD},
           {"private_record": "yes"}]
    before = api.counts()
    for fields in bad:
        refused = api.client.post("/v1/stamps", headers=api.auth,
                                  json={"sha256": "ef" * 32, **fields})
        assert refused.status_code == 400, fields
        assert refused.mimetype == "application/problem+json"
    assert api.counts() == before


def test_upload_private_with_stored_disclosure(worker_api, tmp_path):
    api = worker_api
    response = api.post_image(png_bytes(), metadata=json.dumps(RECORD), private_record="true",
                              store_disclosure="true")
    assert response.status_code == 202, response.get_json()
    receipt_id = response.get_json()["id"]
    api.run()
    served = api.client.get(f"/v1/stamps/{receipt_id}/bundle", headers=api.auth).data
    assert "disclosure.json" in _members(served)  # kept because the creator asked
    run = _verify_py(served, tmp_path, "stored.zip")
    assert run.returncode == 0 and "[REVEALED] prompt" in run.stdout, run.stdout
