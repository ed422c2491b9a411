"""POST /v1/stamps/batch (many digests, one transaction, a result per item) and POST
/v1/stamps/wait (a long poll on many receipts), on the real app, database, Redis and TSA."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from typing import Any

from sqlalchemy import func, select

from service.settings import Rate
from service.storage.group_commit import group_commit_for
from service.storage.tables import receipts
from service.usecases.receipts import MAX_BUNDLES, MAX_WAIT_IDS
from service.usecases.register_batch import MAX_BATCH_ITEMS
from tests.e2e.conftest import Api

PROBLEM = "urn:chronoseal:problem:"


def digest(n: int | str) -> str:
    return hashlib.sha256(f"image {n}".encode()).hexdigest()


def post(api: Api, path: str, body: Any, **headers: str) -> Any:
    return api.client.post(path, data=json.dumps(body), content_type="application/json",
                           headers={**api.auth, **headers})


def receipt_count(api: Api) -> int:
    with api.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(receipts)).scalar_one())


def test_a_result_per_item_in_one_transaction(api: Api) -> None:
    before, commits = receipt_count(api), group_commit_for(api.services.engine).commits
    answer = post(api, "/v1/stamps/batch", {"items": [
        {"sha256": digest(1), "metadata": {"prompt": "one"}, "external_id": "post-1"},
        {"sha256": "not hex"},
        {"sha256": digest(3), "metadata": ["not", "an", "object"]},
        {"sha256": digest(4), "metadata": {"seed": 2**60}},  # beyond JCS's exact integers
        {"sha256": digest(5), "colour": "red"},
        {"sha256": digest(6), "callback_url": "http://127.0.0.1:1/hook"},  # SSRF guard
        {"sha256": digest(7)},
    ]})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert [i["status"] for i in body["items"]] == [202, 400, 400, 400, 400, 400, 202]
    kinds = [i["problem"]["type"].removeprefix(PROBLEM) for i in body["items"] if "problem" in i]
    assert kinds == ["invalid-digest", "invalid-metadata", "metadata-out-of-bounds",
                     "invalid-field", "url-refused"]
    assert body["accepted"] == 2 and body["refused"] == 5
    first = body["items"][0]["receipt"]
    assert first["status"] == "pending" and first["replayed"] is False
    assert first["links"]["self"] == f"/v1/stamps/{first['id']}"
    assert receipt_count(api) == before + 2  # the refused items left nothing behind
    assert group_commit_for(api.services.engine).commits == commits + 1  # one transaction
    stored = api.client.get(first["links"]["self"], headers=api.auth).get_json()
    assert stored["manifest"]["external_id"] == "post-1"
    assert stored["manifest"]["generation"]["prompt"] == "one"


def test_items_are_idempotent_by_their_own_key(api: Api) -> None:
    items = [{"sha256": digest(n), "idempotency_key": f"run-1:{n}"} for n in range(3)]
    first = post(api, "/v1/stamps/batch", {"items": items}).get_json()["items"]
    ids = [i["receipt"]["id"] for i in first]
    count = receipt_count(api)
    changed = [*items[:2], {**items[2], "metadata": {"prompt": "another body"}},
               {"sha256": digest(9), "idempotency_key": "run-1:9"},
               {"sha256": digest(9), "idempotency_key": "run-1:9"},  # twice in one batch
               {"sha256": digest(8), "idempotency_key": "run-1:9"}]  # the key, another body
    again = post(api, "/v1/stamps/batch", {"items": changed}).get_json()["items"]
    assert [i["status"] for i in again] == [202, 202, 409, 202, 202, 409]
    assert [i["receipt"]["id"] for i in again[:2]] == ids[:2]
    assert all(i["receipt"]["replayed"] for i in again[:2])
    assert again[2]["problem"]["type"] == PROBLEM + "idempotency-conflict"
    assert again[3]["receipt"]["replayed"] is False and again[4]["receipt"]["replayed"] is True
    assert again[3]["receipt"]["id"] == again[4]["receipt"]["id"]
    assert receipt_count(api) == count + 1
    bad_key = post(api, "/v1/stamps/batch", {"items": [
        {"sha256": digest(10), "idempotency_key": "with space"}]}).get_json()["items"]
    assert bad_key[0]["problem"]["type"] == PROBLEM + "invalid-field"


def test_a_record_read_by_the_client_gets_sources_and_conflicts(api: Api) -> None:
    record = {"prompt": "a fox", "seed": 42, "steps": 20, "source": "a1111",
              "raw": {"parameters": "a fox\nSteps: 20, Seed: 42"},
              "details": {"Schedule type": "Karras"}}
    answer = post(api, "/v1/stamps", {"sha256": digest("fox"), "metadata": {"seed": 9},
                                      "record": record})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert any("seed" in w and "conflicts" in w for w in answer.get_json()["warnings"])
    receipt = api.client.get(answer.headers["Location"], headers=api.auth).get_json()
    generation = receipt["manifest"]["generation"]
    assert generation["source"] == "a1111" and generation["prompt"] == "a fox"
    assert generation["sources"]["file"]["read_by"] == "client"
    assert generation["sources"]["file"]["details"] == {"Schedule type": "Karras"}
    assert generation["sources"]["request"]["seed"] == 9
    assert generation["conflicts"] == [{"field": "seed", "file": 42, "request": 9}]
    assert generation["raw"]["file"] == record["raw"]
    # The batch parses items with the same function: the record flows through it too.
    item = post(api, "/v1/stamps/batch", {"items": [
        {"sha256": digest("fox2"), "record": record}]}).get_json()["items"][0]
    stored = api.client.get(item["receipt"]["links"]["self"], headers=api.auth).get_json()
    assert stored["manifest"]["generation"]["sources"]["file"]["source"] == "a1111"
    for bad in ({"prompt": "no source"}, {"source": "Not A Name!"}, {"source": "x", "raw": []},
                "text", None, {"source": "x", "provenance": None}, {"source": "x", "seed": 2**60},
                {"source": "x", "raw": {"text": "\ud800"}},  # no UTF-8 for it, so no JCS
                {"source": "x", "raw": {"text": "y" * 70_000}}):  # over MAX_METADATA_BYTES
        refused = post(api, "/v1/stamps", {"sha256": digest("bad"), "record": bad})
        assert refused.status_code == 400, bad
        assert refused.get_json()["type"] in (PROBLEM + "metadata-out-of-bounds",
                                              PROBLEM + "invalid-metadata")


def test_bounds_of_a_batch(api: Api) -> None:
    too_many = {"items": [{"sha256": digest(n)} for n in range(MAX_BATCH_ITEMS + 1)]}
    for body in (too_many, {"items": []}, {"items": "x"}, {"items": [], "more": 1}, [1]):
        answer = post(api, "/v1/stamps/batch", body)
        assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    form = api.client.post("/v1/stamps/batch", data={"items": "x"}, headers=api.auth)
    assert form.status_code == 415
    anonymous = api.client.post("/v1/stamps/batch", data="{}", content_type="application/json")
    assert anonymous.status_code == 401
    assert receipt_count(api) == 0


def test_each_item_counts_against_the_rate_limit(make_api: Any) -> None:
    api = make_api(rate_limit_register_per_key=Rate(5, 60))
    ok = post(api, "/v1/stamps/batch", {"items": [{"sha256": digest(n)} for n in range(4)]})
    assert ok.status_code == 200
    over = post(api, "/v1/stamps/batch", {"items": [{"sha256": digest(n)} for n in range(2)]})
    assert over.status_code == 429 and over.headers["Retry-After"]


def test_wait_answers_when_receipts_are_stamped(worker_api: Api) -> None:
    api = worker_api
    items = post(api, "/v1/stamps/batch", {"items": [{"sha256": digest(n)}
                                                     for n in range(3)]}).get_json()["items"]
    ids = [i["receipt"]["id"] for i in items]
    other_id = post(api, "/v1/stamps", {"sha256": digest("other")},
                    Authorization=f"Bearer {api.new_key()[1]}").get_json()["id"]
    started = time.monotonic()
    waited = post(api, "/v1/stamps/wait", {"ids": [*ids, other_id, "rcp_nothing"],
                                           "wait_s": 0.5}).get_json()
    assert time.monotonic() - started >= 0.5  # nothing settled: it waited the time asked
    assert waited == {"items": [], "pending": ids, "unknown": [other_id, "rcp_nothing"]}
    api.run()  # the worker stamps the batch
    settled = post(api, "/v1/stamps/wait", {"ids": ids, "wait_s": 5}).get_json()
    assert sorted(r["id"] for r in settled["items"]) == sorted(ids)
    assert all(r["status"] == "stamped" and r["stamped_at"] for r in settled["items"])
    assert settled["pending"] == [] and settled["unknown"] == []
    started = time.monotonic()
    nothing = post(api, "/v1/stamps/wait", {"ids": ["rcp_nothing"], "wait_s": 20}).get_json()
    assert nothing["unknown"] == ["rcp_nothing"] and time.monotonic() - started < 10
    # Their bundles in one request, each the bytes of GET /v1/stamps/{id}/bundle.
    pending = post(api, "/v1/stamps", {"sha256": digest("late")}).get_json()["id"]
    many = post(api, "/v1/stamps/bundles", {"ids": [*ids, pending, other_id]}).get_json()
    assert sorted(many["bundles"]) == sorted(ids)
    assert many["missing"] == [pending, other_id]  # not stamped; another key's
    for receipt_id, text in many["bundles"].items():
        alone = api.client.get(f"/v1/stamps/{receipt_id}/bundle", headers=api.auth).data
        assert base64.b64decode(text) == alone
    # The same bundles with the exhibit left out: every other member byte for byte.
    bare = post(api, "/v1/stamps/bundles", {"ids": ids, "exhibit": False}).get_json()
    for receipt_id, text in bare["bundles"].items():
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(text))) as without, zipfile.ZipFile(
                io.BytesIO(base64.b64decode(many["bundles"][receipt_id]))) as full:
            assert {"certificate.html", "certificate.pdf"} <= set(full.namelist())
            assert set(without.namelist()) == set(full.namelist()) - {
                "certificate.html", "certificate.pdf"}
            assert all(without.read(n) == full.read(n) for n in without.namelist())
    for body in ({"ids": []}, {"ids": ["x"] * (MAX_BUNDLES + 1)}, {"ids": ids, "wait_s": 1},
                 {"ids": ids, "exhibit": "no"}):
        assert post(api, "/v1/stamps/bundles", body).status_code == 400, body
    for body in ({"ids": []}, {"ids": ids, "wait_s": 21}, {"ids": ids, "wait_s": "soon"},
                 {"ids": [1]}, {"ids": ["x"] * (MAX_WAIT_IDS + 1)}, {"ids": ids, "other": 1}):
        refused = post(api, "/v1/stamps/wait", body)
        assert refused.status_code == 400, body
        assert refused.get_json()["type"] == PROBLEM + "invalid-field"
