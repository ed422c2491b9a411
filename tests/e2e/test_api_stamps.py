"""POST /v1/stamps and the receipt reads, on SQLite and PostgreSQL with the real Redis."""

from __future__ import annotations

import hashlib
import io
import json

from service.evidence.hashing import BOMB, UNDECODABLE
from service.evidence.manifest import manifest_digest
from tests.e2e.conftest import CLOSED_REDIS_URL
from tests.support.images import bomb_png, png_bytes

METADATA = {"prompt": "a lighthouse at dusk", "Steps": "30", "cfg_scale": 7.5, "seed": 42}


def test_upload_registers_a_pending_receipt(api):
    image = png_bytes()
    response = api.post_image(image, metadata=json.dumps(METADATA), external_id="post-1")
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending" and body["id"].startswith("rcp_")
    assert body["warnings"] == []
    assert response.headers["Location"] == body["links"]["self"] == f"/v1/stamps/{body['id']}"
    assert body["links"]["bundle"].endswith("/bundle")

    receipt = api.client.get(body["links"]["self"], headers=api.auth).get_json()
    manifest = receipt["manifest"]
    assert manifest["v"] == 1 and manifest["external_id"] == "post-1"
    assert manifest["image"] == {"sha256": hashlib.sha256(image).hexdigest(),
                                 "size": len(image), "media_type": "image/png"}
    generation = manifest["generation"]
    assert generation["raw"] == METADATA and generation["source"] == "request"
    assert generation["prompt"] == METADATA["prompt"] and generation["steps"] == 30
    assert manifest["submitted_at"].endswith("Z")
    assert receipt["status"] == "pending" and receipt["proof"] is None
    assert receipt["tokens"] == [] and receipt["stamped_at"] is None


def test_manifest_digest_is_sha256_of_the_stored_jcs(api):
    body = api.post_image(png_bytes(), metadata=json.dumps(METADATA)).get_json()
    receipt = api.client.get(body["links"]["self"], headers=api.auth).get_json()
    from service.evidence.manifest import canonicalize

    assert manifest_digest(canonicalize(receipt["manifest"])).hex() == receipt["manifest_digest"]
    assert receipt["manifest_digest"] == body["manifest_digest"]


def test_digest_only_json_registers(api):
    digest = "AB" * 32
    response = api.client.post("/v1/stamps", headers=api.auth,
                               json={"sha256": digest, "metadata": METADATA, "external_id": "x"})
    assert response.status_code == 202
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["image"] == {"sha256": digest.lower()}
    assert receipt["image_sha256"] == digest.lower()


def test_metadata_is_optional(api):
    response = api.post_image(png_bytes())
    assert response.status_code == 202
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["generation"]["raw"] == {}


def test_non_image_bytes_are_registered_with_a_warning(api):
    response = api.post_image(b"just some text, not pixels\n" * 10, filename="notes.txt")
    assert response.status_code == 202
    assert response.get_json()["warnings"] == [UNDECODABLE]
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert "media_type" not in receipt["manifest"]["image"]  # nothing sniffed: left out


def test_damaged_image_keeps_its_sniffed_media_type(api):
    fake_jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 200
    response = api.post_image(fake_jpeg, filename="broken.jpg")
    assert response.status_code == 202
    assert response.get_json()["warnings"] == [UNDECODABLE]
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["image"]["media_type"] == "image/jpeg"
    assert receipt["warnings"] == [UNDECODABLE]


def test_decompression_bomb_is_a_warning_not_an_error(make_api):
    api = make_api(max_upload_bytes=1024 * 1024)
    bomb = bomb_png()
    response = api.post_image(bomb, filename="bomb.png")
    assert response.status_code == 202
    assert response.get_json()["warnings"] == [BOMB]
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["image"]["media_type"] == "image/png"
    assert receipt["manifest"]["image"]["sha256"] == hashlib.sha256(bomb).hexdigest()


def test_idempotent_repeat_returns_the_same_receipt(api):
    headers = {"Idempotency-Key": "upload-0001"}
    first = api.post_image(png_bytes(), headers, metadata=json.dumps(METADATA))
    before = api.counts()
    again = api.post_image(png_bytes(), headers, metadata=json.dumps(METADATA))
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.counts() == before


def test_idempotency_key_is_per_api_key(api):
    headers = {"Idempotency-Key": "shared-name"}
    mine = api.post_image(png_bytes(), headers).get_json()["id"]
    _, other_secret = api.new_key()
    theirs = api.client.post(
        "/v1/stamps", headers={"Authorization": f"Bearer {other_secret}", **headers},
        json={"sha256": "00" * 32},
    )
    assert theirs.status_code == 202 and theirs.get_json()["id"] != mine


def test_redis_down_still_accepts_the_receipt(make_api):
    api = make_api(redis_url=CLOSED_REDIS_URL)
    response = api.post_image(png_bytes())
    assert response.status_code == 202
    assert api.counts()["receipts"] == 1
    assert api.client.get(response.headers["Location"], headers=api.auth).status_code == 200


def test_uploads_enqueue_one_stamp_job_soon_after(api):
    import time

    from rq import Queue

    api.services.redis.delete(f"chronoseal:{api.services.settings.queue_name}:stamp-flag")
    queue = Queue(api.services.settings.queue_name, connection=api.services.redis)
    queue.empty()
    api.post_image(png_bytes())
    api.post_image(png_bytes(color=(1, 2, 3)))
    deadline = time.monotonic() + 5  # the signal runs on its own thread, ~20 ms later
    while not queue.jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # a second job, if one were coming, would be there by now
    stamp_jobs = [job for job in queue.jobs if job.func_name == "workers.jobs.stamp_batch"]
    assert len(stamp_jobs) == 1  # deduplicated: one job covers both receipts
    queue.empty()


def test_public_flag_is_stored(api):
    response = api.post_image(png_bytes(), public="true")
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["public"] is True


def test_image_part_without_filename_is_accepted(api):
    body = (b'--b\r\nContent-Disposition: form-data; name="image"\r\n\r\n' + png_bytes()
            + b"\r\n--b--\r\n")
    response = api.client.post("/v1/stamps", headers=api.auth, data=body,
                               content_type="multipart/form-data; boundary=b")
    assert response.status_code == 202
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    assert receipt["manifest"]["image"]["sha256"] == hashlib.sha256(png_bytes()).hexdigest()


def test_registering_the_same_bytes_again_names_the_earlier_receipts(api) -> None:
    image = png_bytes(color=(1, 2, 3))
    first = api.post_image(image).get_json()
    assert first["earlier_receipts"] == []
    second = api.post_image(image).get_json()
    assert second["id"] != first["id"]
    [earlier] = second["earlier_receipts"]
    assert earlier["id"] == first["id"] and earlier["status"] == "pending"
    assert earlier["created_at"].endswith("Z") and earlier["links"]["self"].endswith(first["id"])
    # Another key's registration of the same bytes is its own business: never shown.
    _, other_secret = api.new_key()
    other = api.client.post("/v1/stamps", data={"image": (io.BytesIO(image), "a.png")},
                            headers={"Authorization": f"Bearer {other_secret}"},
                            content_type="multipart/form-data").get_json()
    assert other["earlier_receipts"] == []
