"""`chronoseal stamp --private-record --hash-only`, `--session/--parent --history` and
`chronoseal disclose` against a running service (the fixture of test_client_stamp)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from sqlalchemy import select

from service.cli import main
from service.storage.tables import receipts
from tests.e2e.test_client_stamp import Service, service, verify  # noqa: F401 - the fixture
from tests.support.records import png_texts

PROMPT = "a private harbour at night"
A1111 = (f"{PROMPT}\nNegative prompt: fog\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
         "Seed: 1234, Size: 8x8, Model: secret-model")


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def test_private_hash_only_then_disclose(service: Service, tmp_path: Path) -> None:  # noqa: F811
    art = tmp_path / "art"
    art.mkdir()
    image = art / "harbour.png"
    image.write_bytes(png_texts({"parameters": A1111}))
    run = service.stamp(image, "--hash-only", "--private-record", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    bundle = tmp_path / "out" / "harbour.png.chronoseal.zip"
    members = _members(bundle)
    opened = json.loads(members["disclosure.json"])["fields"]
    assert opened["prompt"]["value"] == PROMPT and opened["seed"]["value"] == 1234
    # Only commitments left the machine: the server's rows hold no value of the record.
    with service.env.services.engine.connect() as conn:
        rows = conn.execute(select(receipts.c.manifest_jcs, receipts.c.disclosure_json)).all()
    assert rows and all(PROMPT.encode() not in bytes(m) and d is None for m, d in rows)
    code, text = verify(bundle, image, service.tsa.roots)
    assert code == 0, text

    court = tmp_path / "court.zip"
    assert main(["disclose", str(bundle), "--fields", "prompt", "-o", str(court)]) == 0
    shown = _members(court)
    assert list(json.loads(shown["disclosure.json"])["fields"]) == ["prompt"]
    assert all(b"secret-model" not in data for data in shown.values())
    code, text = verify(court, image, service.tsa.roots)
    assert code == 0, text


def test_session_parents_and_history_bundle(service: Service, tmp_path: Path) -> None:  # noqa: F811
    art = tmp_path / "art"
    art.mkdir()
    first, second = art / "v1.png", art / "v2.png"
    first.write_bytes(png_texts({"parameters": "v1\nSteps: 1, Seed: 1"}))
    second.write_bytes(png_texts({"parameters": "v2\nSteps: 2, Seed: 2"}))
    run = service.stamp(first, "--hash-only", "--session", "evening", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    parent = hashlib.sha256(first.read_bytes()).hexdigest()
    run = service.stamp(second, "--hash-only", "--session", "evening", "--parent", parent,
                        "--history", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    members = _members(tmp_path / "out" / "v2.png.chronoseal.zip")
    manifest = json.loads(members["manifest.json"])
    assert manifest["session"] == "evening" and manifest["parents"] == [{"image_sha256": parent}]
    carried = [n for n in members if n.startswith("history/") and n.endswith("/manifest.json")]
    assert len(carried) == 1
    assert json.loads(members[carried[0]])["image"]["sha256"] == parent
    code, text = verify(tmp_path / "out" / "v2.png.chronoseal.zip", second, service.tsa.roots)
    assert code == 0, text


def test_private_upload_keeps_the_disclosure_in_the_local_bundle(service: Service,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    image = tmp_path / "upload.png"
    image.write_bytes(png_texts({"parameters": A1111}))
    run = service.stamp(image, "--private-record", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    bundle = tmp_path / "out" / "upload.png.chronoseal.zip"
    members = _members(bundle)
    manifest = json.loads(members["manifest.json"])
    assert manifest["generation"]["private"] is True
    assert PROMPT not in members["manifest.json"].decode()
    assert json.loads(members["disclosure.json"])["fields"]["prompt"]["value"] == PROMPT
    with service.env.services.engine.connect() as conn:  # not asked to keep it: not kept
        assert conn.execute(select(receipts.c.disclosure_json)).scalars().all() == [None]
    code, text = verify(bundle, image, service.tsa.roots)
    assert code == 0, text
