"""The iteration history (issue 14 §2): sessions and parents in the manifest, GET
/v1/sessions/{id}, and history bundles checked by the bundle's own verify.py alone."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from service.cli import main
from service.evidence.bundle_check import check_bundle
from service.usecases.lineage import MAX_PARENTS
from tests.support.images import png_bytes

SESSION = "forge-2026-12-02.evening"
VERIFY_TIMEOUT_S = 120


def _digest(n: int) -> str:
    return hashlib.sha256(f"image {n}".encode()).hexdigest()


def _register(api: Any, n: int, **fields: Any) -> dict[str, Any]:
    response = api.client.post("/v1/stamps", headers=api.auth, json={
        "sha256": _digest(n), "metadata": {"prompt": f"iteration {n}"}, **fields})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _chain(api: Any) -> list[dict[str, Any]]:
    """Three iterations: a <- b (and an outside image digest) <- c, each stamped in turn."""
    a = _register(api, 1, session=SESSION)
    api.run()
    b = _register(api, 2, session=SESSION, parents=[a["id"], _digest(99)])
    api.run()
    c = _register(api, 3, session=SESSION, parents=[b["id"]])
    api.run()
    return [a, b, c]


def _verify_py(bundle: bytes, tmp_path: Path, name: str = "b.zip"
               ) -> subprocess.CompletedProcess[str]:
    """The bundle's own verify.py, run by a bare interpreter (-I: no Chronoseal importable)."""
    path = tmp_path / name
    path.write_bytes(bundle)
    with zipfile.ZipFile(path) as archive:
        (tmp_path / "verify.py").write_bytes(archive.read("verify.py"))
    return subprocess.run([sys.executable, "-I", str(tmp_path / "verify.py"), "--bundle",
                           str(path)], capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S,
                          cwd=tmp_path, check=False)


def test_session_and_parents_are_in_the_manifest_and_listed_in_order(worker_api):
    api = worker_api
    a, b, c = _chain(api)
    receipt = api.client.get(f"/v1/stamps/{b['id']}", headers=api.auth).get_json()
    assert receipt["status"] == "stamped"
    manifest = receipt["manifest"]
    assert manifest["session"] == SESSION
    # A receipt id is resolved to its manifest digest: the timestamp covers which manifest.
    assert manifest["parents"] == [{"receipt": a["id"], "manifest_sha256": a["manifest_digest"]},
                                   {"image_sha256": _digest(99)}]
    listed = api.client.get(f"/v1/sessions/{SESSION}", headers=api.auth).get_json()
    assert [item["id"] for item in listed["items"]] == [a["id"], b["id"], c["id"]]
    assert listed["items"][2]["parents"][0]["receipt"] == b["id"]
    assert listed["next_cursor"] is None
    first = api.client.get(f"/v1/sessions/{SESSION}?limit=2", headers=api.auth).get_json()
    rest = api.client.get(f"/v1/sessions/{SESSION}?cursor={first['next_cursor']}",
                          headers=api.auth).get_json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [a["id"], b["id"], c["id"]]

    # Owner-scoped: another key sees an empty session, and cannot name these receipts.
    _, other = api.new_key()
    theirs = {"Authorization": f"Bearer {other}"}
    assert api.client.get(f"/v1/sessions/{SESSION}", headers=theirs).get_json()["items"] == []
    refused = api.client.post("/v1/stamps", headers=theirs, json={
        "sha256": _digest(5), "parents": [a["id"]]})
    assert refused.status_code == 400
    assert refused.get_json()["type"] == "urn:chronoseal:problem:unknown-parent"


def test_bad_lineage_fields_are_problems_and_write_nothing(worker_api):
    api = worker_api
    before = api.counts()
    cases = [
        ({"parents": ["rcp_0000000000AAAAAAAAAAAAAAAA"]}, "unknown-parent"),
        ({"parents": [_digest(n) for n in range(MAX_PARENTS + 1)]}, "invalid-field"),
        ({"parents": ["not a digest"]}, "invalid-field"),
        ({"parents": "rcp_x"}, "invalid-field"),
        ({"session": "x" * 129}, "invalid-field"),
        ({"session": "../etc"}, "invalid-field"),
        ({"session": 7}, "invalid-field"),
    ]
    for fields, slug in cases:
        response = api.client.post("/v1/stamps", headers=api.auth,
                                   json={"sha256": _digest(1), **fields})
        assert response.status_code == 400, fields
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["type"] == f"urn:chronoseal:problem:{slug}", fields
    assert api.client.get("/v1/sessions/..%2Fetc", headers=api.auth).status_code in (400, 404)
    assert api.counts() == before


def test_upload_form_names_session_and_parents(worker_api):
    api = worker_api
    first = _register(api, 1)
    response = api.post_image(png_bytes(), session="s-form", parents=f"{first['id']},{_digest(7)}")
    assert response.status_code == 202, response.get_json()
    manifest = api.client.get(response.headers["Location"], headers=api.auth).get_json()["manifest"]
    assert manifest["session"] == "s-form"
    assert [p.get("receipt") or p.get("image_sha256") for p in manifest["parents"]] == [
        first["id"], _digest(7)]


def test_history_bundle_is_verified_by_verify_py_alone(worker_api, tmp_path):
    api = worker_api
    a, b, c = _chain(api)
    plain = api.client.get(f"/v1/stamps/{c['id']}/bundle", headers=api.auth).data
    assert not any(n.startswith("history/") for n in zipfile.ZipFile(io.BytesIO(plain)).namelist())
    response = api.client.get(f"/v1/stamps/{c['id']}/bundle?history=true", headers=api.auth)
    assert response.status_code == 200
    bundle = response.data
    names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    for earlier in (a, b):
        assert f"history/{earlier['id']}/manifest.json" in names
        assert any(n.startswith(f"history/{earlier['id']}/tokens/") for n in names)

    exhibit = zipfile.ZipFile(io.BytesIO(bundle)).read("certificate.html").decode()
    shown = exhibit[exhibit.index("Iteration history"):exhibit.index("Merkle inclusion")]
    assert shown.index(a["id"]) < shown.index(b["id"]), shown  # oldest first, with times:
    assert shown.count(" UTC according to ") == 2, shown
    guide = zipfile.ZipFile(io.BytesIO(bundle)).read("VERIFY.md").decode()
    assert "## Earlier iterations" in guide and f"receipt `{b['id']}`" in guide
    run = _verify_py(bundle, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"[PASS] history {a['id']}: an ancestor of this image" in run.stdout
    history = [line for line in run.stdout.splitlines() if line.startswith("[HISTORY]")]
    assert [a["id"] in history[0], b["id"] in history[1], "this image" in history[2]] == [
        True, True, True], run.stdout
    assert "UTC" in history[0] and SESSION in history[0]
    assert run.stdout.count("revocation of builtin") <= 2, run.stdout  # said once in RESULT

    verdict = check_bundle(bundle)
    assert verdict.valid, verdict.reasons
    assert any(ch.name.startswith(f"history:{a['id']}:token:") and ch.ok for ch in verdict.checks)
    assert [i.receipt_id for i in verdict.history] == [a["id"], b["id"]]  # oldest first
    assert all(i.valid and i.gen_time is not None for i in verdict.history)
    assert verdict.history[0].gen_time < verdict.history[1].gen_time
    (tmp_path / "c.zip").write_bytes(bundle)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["verify", str(tmp_path / "c.zip")]) == 0
    text = out.getvalue()
    assert "iteration history (oldest first" in text
    assert text.index(a["id"]) < text.index(b["id"]), text

    # An iteration no parent names (a receipt of another chain slipped in): not an ancestor.
    stray = _register(api, 50)
    api.run()
    lone = api.client.get(f"/v1/stamps/{stray['id']}/bundle", headers=api.auth).data
    mixed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(mixed, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        with zipfile.ZipFile(io.BytesIO(lone)) as extra:
            for name in ("manifest.json", "proof.json", "batch-head.json"):
                target.writestr(f"history/{stray['id']}/{name}", extra.read(name))
            for name in extra.namelist():
                if name.startswith(("tokens/", "certs/")):
                    target.writestr(f"history/{stray['id']}/{name}", extra.read(name))
    unlinked = _verify_py(mixed.getvalue(), tmp_path, "mixed.zip")
    assert unlinked.returncode == 1, unlinked.stdout
    assert f"[FAIL] history {stray['id']}: an ancestor" in unlinked.stdout
    assert f"history:{stray['id']}:link" in " ".join(check_bundle(mixed.getvalue()).reasons)

    # An ancestor's manifest changed inside the bundle: both verifiers refuse it.
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == f"history/{a['id']}/manifest.json":
                data = data.replace(b"iteration 1", b"iteration 9")
            target.writestr(info, data)
    tampered = _verify_py(out.getvalue(), tmp_path, "tampered.zip")
    assert tampered.returncode == 1, tampered.stdout
    assert "RESULT: INVALID" in tampered.stdout
    assert not check_bundle(out.getvalue()).valid


def test_history_needs_stamped_ancestors_and_a_flag(worker_api):
    api = worker_api
    a = _register(api, 1)
    api.run()
    b = _register(api, 2, parents=[a["id"]])
    bad = api.client.get(f"/v1/stamps/{b['id']}/bundle?history=maybe", headers=api.auth)
    assert bad.status_code == 400
    assert bad.get_json()["type"] == "urn:chronoseal:problem:invalid-field"
    assert api.client.get(f"/v1/stamps/{b['id']}/bundle?history=true",
                          headers=api.auth).status_code == 409  # b itself is pending
    api.run()
    bundle = api.client.get(f"/v1/stamps/{b['id']}/bundle?history=1", headers=api.auth).data
    assert f"history/{a['id']}/proof.json" in zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    assert json.loads(zipfile.ZipFile(io.BytesIO(bundle)).read("manifest.json"))["parents"]


def test_lineage_is_part_of_the_idempotent_request(worker_api):
    api = worker_api
    headers = {**api.auth, "Idempotency-Key": "iteration-7"}
    body = {"sha256": _digest(7), "session": "s-a", "parents": [_digest(6)]}
    first = api.client.post("/v1/stamps", headers=headers, json=body)
    again = api.client.post("/v1/stamps", headers=headers, json=body)
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    other = api.client.post("/v1/stamps", headers=headers, json={**body, "session": "s-b"})
    assert other.status_code == 409
    assert other.get_json()["type"] == "urn:chronoseal:problem:idempotency-conflict"
