"""GET /v1/stamps/{id}/content-credentials: a copy with a Chronoseal C2PA manifest, read back
and validated by c2pa-python with Chronoseal's root trusted; one changed pixel fails; the copy
is registered as a child of the original. GET /c2pa/root.pem publishes that root."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.evidence.credentials.definition import (
    GENERATION_LABEL,
    REGISTRATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
)
from service.evidence.records import c2pa as c2pa_reader
from tests.e2e.conftest import Api
from tests.support.c2pa_files import change_one_pixel, created_by, plain_image

METADATA = {"prompt": "a lighthouse at dusk", "model": "sdxl-base-1.0", "seed": 42,
            "software": "ComfyUI 0.3.10"}


def _stamped(api: Any, data: bytes, filename: str) -> str:
    posted = api.post_image(data, filename=filename, metadata=json.dumps(METADATA))
    assert posted.status_code == 202, posted.get_json()
    receipt_id: str = posted.get_json()["id"]
    for _ in range(20):  # burst runs until the queue is empty; a batch may need a second
        api.run()
        if api.client.get(f"/v1/stamps/{receipt_id}", headers=api.auth).get_json()[
                "status"] == "stamped":
            return receipt_id
    raise AssertionError("never stamped")


def _read(data: bytes, anchors: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SDK's own report (active manifest, validation) with `anchors` trusted."""
    import c2pa

    media = {b"\x89P": "image/png", b"\xff\xd8": "image/jpeg", b"RI": "image/webp"}[data[:2]]
    context = c2pa.Context(c2pa.Settings.from_dict(
        {"trust": {"trust_anchors": anchors}, "verify": {"ocsp_fetch": False}}))
    with c2pa.Reader(media, io.BytesIO(data), context=context) as reader:
        report = json.loads(reader.json())
        report["validation_state"] = reader.get_validation_state()
    return report["manifests"][report["active_manifest"]], report


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_embedded_copy_validates_with_chronoseal_root_and_is_registered_as_child(
        make_worker_api: Callable[..., Api], tmp_path: Path, fmt: str) -> None:
    api: Any = make_worker_api(keep_images=True)
    original = created_by(fmt, "Some Generator", "3.0")  # the generator's own C2PA first
    receipt_id = _stamped(api, original, f"image.{fmt}")

    answer = api.client.get(f"/v1/stamps/{receipt_id}/content-credentials", headers=api.auth)
    assert answer.status_code == 200, answer.data[:400]
    copy = answer.data
    assert answer.mimetype == f"image/{fmt}"
    assert answer.headers["Chronoseal-Copy-Of"] == receipt_id
    child_id = answer.headers["Chronoseal-Receipt"]
    assert answer.headers["Link"] == f'</v1/stamps/{child_id}>; rel="self"'

    root = api.client.get("/c2pa/root.pem")
    assert root.status_code == 200 and root.data.startswith(b"-----BEGIN CERTIFICATE-----")
    anchors = root.data.decode() + (tmp_path / "tsa" / "root-cert.pem").read_text()
    active, report = _read(copy, anchors)
    assert report["validation_state"] == "Trusted", report.get("validation_results")
    assert active["signature_info"]["issuer"] == "Chronoseal"
    assert active["claim_generator_info"][0]["name"] == "Chronoseal"
    codes = {c["code"] for c in report["validation_results"]["activeManifest"]["success"]}
    assert {"timeStamp.validated", "timeStamp.trusted", "signingCredential.trusted",
            "assertion.dataHash.match"} <= codes  # the claim signature time-stamped by our TSA
    assertions = {a["label"]: a["data"] for a in active["assertions"]}
    [created] = assertions["c2pa.actions.v2"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    stamp = api.client.get(f"/v1/stamps/{receipt_id}", headers=api.auth).get_json()
    # The record's software: the file's own C2PA generator wins over the request's (as ever).
    assert stamp["manifest"]["generation"]["software"] == "Some Generator 3.0"
    assert created["softwareAgent"]["name"] == "Some Generator 3.0"
    registration = assertions[REGISTRATION_LABEL]
    assert registration["receipt_id"] == receipt_id
    assert registration["manifest_digest"] == stamp["manifest_digest"]
    assert registration["copy_of"]["image_sha256"] == hashlib.sha256(original).hexdigest()
    assert registration["proof"]["root"] == stamp["proof"]["root"]
    assert [t["gen_time"] for t in registration["timestamps"]] == [
        t["gen_time"] for t in stamp["tokens"]]
    assert registration["bundle_url"].endswith(f"/v1/stamps/{receipt_id}/bundle")
    assert assertions[GENERATION_LABEL]["prompt"] == "a lighthouse at dusk"
    assert assertions[GENERATION_LABEL]["seed"] == 42

    # The copy is registered: its own receipt holds the copy's bytes, and the same key owns it.
    child = api.client.get(f"/v1/stamps/{child_id}", headers=api.auth).get_json()
    assert child["manifest"]["image"]["sha256"] == hashlib.sha256(copy).hexdigest()
    assert child["manifest"]["generation"]["prompt"] == "a lighthouse at dusk"
    # Chronoseal's reader records Chronoseal's manifest on the copy, validated.
    facts = child["manifest"]["generation"]["sources"]["file"]["provenance"]["c2pa"]
    assert facts["claim_generator"].startswith("Chronoseal")
    assert facts["validation"]["hard_binding"] == "valid"
    assert facts["validation"]["timestamp"] == "valid"
    assert facts["chronoseal_registration"] == {  # the child's manifest names its original
        "receipt_id": receipt_id, "manifest_digest": stamp["manifest_digest"]}

    # One changed pixel: the hard binding fails, and the credential is no longer valid.
    _, changed = _read(change_one_pixel(fmt, copy), anchors)
    assert changed["validation_state"] == "Invalid"
    failures = {c["code"] for c in changed["validation_results"]["activeManifest"]["failure"]}
    assert "assertion.dataHash.mismatch" in failures


def test_the_copy_read_by_chronoseal_with_its_root_trusted(
        make_worker_api: Callable[..., Api]) -> None:
    api: Any = make_worker_api(keep_images=True)
    receipt_id = _stamped(api, plain_image("png"), "image.png")
    copy = api.client.get(f"/v1/stamps/{receipt_id}/content-credentials", headers=api.auth).data
    root = api.client.get("/c2pa/root.pem").data.decode()
    facts = c2pa_reader.read_c2pa(io.BytesIO(copy), [], trust_anchors_pem=root)
    assert facts["claim_generator"].startswith("Chronoseal")
    assert facts["signer"]["issuer"] == "Chronoseal"
    assert facts["validation"]["signature"] == "valid"
    assert facts["validation"]["credential"] == "valid"
    assert facts["validation"]["hard_binding"] == "valid"
    assert facts["actions"][0]["action"] == "c2pa.created"


def test_a_second_get_answers_the_same_copy_and_registers_nothing(
        make_worker_api: Callable[..., Api]) -> None:
    """A GET is safe: fetching the link again (a page, a crawler) gives the copy of the first
    call, byte for byte, under its receipt, and registers and time-stamps nothing. Once that
    copy's bytes are gone, a new copy is signed and registered on its own."""
    api: Any = make_worker_api(keep_images=True)
    receipt_id = _stamped(api, plain_image("png"), "image.png")
    url = f"/v1/stamps/{receipt_id}/content-credentials"
    first = api.client.get(url, headers=api.auth)
    assert first.status_code == 200, first.data[:400]
    assert "Idempotent-Replayed" not in first.headers
    registered = api.counts()["receipts"]
    second = api.client.get(url, headers=api.auth)
    assert second.status_code == 200
    assert second.data == first.data
    assert second.headers["Chronoseal-Receipt"] == first.headers["Chronoseal-Receipt"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert api.counts()["receipts"] == registered

    with api.services.engine.connect() as conn:  # the first copy's bytes dropped
        api.services.uploads.drop(conn, hashlib.sha256(first.data).hexdigest())
        conn.commit()
    third = api.client.get(url, headers=api.auth)
    assert third.status_code == 200, third.data[:400]
    assert third.data != first.data
    assert third.headers["Chronoseal-Receipt"] != first.headers["Chronoseal-Receipt"]
    assert third.headers["Chronoseal-Copy-Of"] == receipt_id
    assert api.counts()["receipts"] == registered + 1


def test_not_stamped_not_kept_and_unknown_are_problems(
        make_worker_api: Callable[..., Api]) -> None:
    api: Any = make_worker_api()  # keep_images off: uploads are dropped after hashing
    posted = api.post_image(plain_image("png"), filename="image.png")
    receipt_id = posted.get_json()["id"]
    pending = api.client.get(f"/v1/stamps/{receipt_id}/content-credentials", headers=api.auth)
    assert pending.status_code == 409
    assert pending.get_json()["type"] == "urn:chronoseal:problem:not-ready"
    receipt_id = _stamped(api, plain_image("png", colour=(1, 2, 3)), "image.png")
    before = api.counts()
    gone = api.client.get(f"/v1/stamps/{receipt_id}/content-credentials", headers=api.auth)
    assert gone.status_code == 409 and gone.mimetype == "application/problem+json"
    assert gone.get_json()["type"] == "urn:chronoseal:problem:image-not-kept"
    assert api.counts() == before  # nothing registered
    digest = api.client.post("/v1/stamps", json={"sha256": "ab" * 32}, headers=api.auth)
    assert digest.status_code == 202, digest.get_json()
    api.run()
    digest_only = api.client.get(f"/v1/stamps/{digest.get_json()['id']}/content-credentials",
                                 headers=api.auth)
    assert digest_only.get_json()["type"] == "urn:chronoseal:problem:image-not-kept"
    unknown = api.client.get("/v1/stamps/nope/content-credentials", headers=api.auth)
    assert unknown.status_code == 404
    anonymous = api.client.get(f"/v1/stamps/{receipt_id}/content-credentials")
    assert anonymous.status_code == 401
    before = api.counts()
    head = api.client.head(f"/v1/stamps/{receipt_id}/content-credentials", headers=api.auth)
    assert head.status_code == 405 and api.counts() == before


def test_uploads_record_c2pa_validation_and_a_broken_store_is_a_warning(api: Api) -> None:
    from tests.support.records import png_with_chunks

    tampered = change_one_pixel("jpeg", created_by("jpeg", "Some Generator", "3.0"))
    posted = api.post_image(tampered, filename="image.jpg")
    assert posted.status_code == 202, posted.get_json()
    receipt = api.client.get(f"/v1/stamps/{posted.get_json()['id']}", headers=api.auth).get_json()
    facts = receipt["manifest"]["generation"]["sources"]["file"]["provenance"]["c2pa"]
    assert facts["claim_generator"] == "Some Generator 3.0"
    assert facts["validation"]["state"] == "Invalid"  # recorded as failing, never as valid
    assert facts["validation"]["hard_binding"] == "invalid"

    broken = png_with_chunks([(b"caBX", b"\x00\x00\x00\x10jumb" + b"\xff" * 8)])
    posted = api.post_image(broken, filename="image.png")
    assert posted.status_code == 202
    assert "generation record: " + c2pa_reader.UNREADABLE in posted.get_json()["warnings"]
