"""POST /v1/search: altered copies find their original; scope; errors as problem+json.

Images are registered through POST /v1/stamps; the API marks them hash_pending and signals
a hashing job on the real Redis, which is then run the way the worker runs it (or, for speed,
hash_receipt_image directly), on the real database.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from rq import Queue

from service.storage.perceptual import hashes_of, receipts_to_hash
from service.usecases.hashing import hash_pending, hash_receipt_image
from service.usecases.queueing import HASH_JOB, background_queue_for, hash_flag_key
from service.usecases.search import MAX_MATCHES
from service.web.context import signals_of
from tests.e2e.conftest import Api
from tests.support.alterations import ALTERATIONS, encode
from tests.support.images import bomb_png
from tests.support.pictures import picture, picture_png, series_picture
from workers import bootstrap

UPLOAD_LIMIT = 4 * 1024 * 1024  # generated pictures are a few hundred KiB
ORIGINAL, OTHERS = 7, (101, 102, 103)  # seeds: the picture searched for, unrelated ones


@pytest.fixture
def search_api(make_api: Callable[..., Api]) -> Api:
    return make_api(max_upload_bytes=UPLOAD_LIMIT)


def register(api: Api, data: bytes, *, auth: dict[str, str] | None = None,
             public: bool = False, hash_now: bool = True) -> str:
    form: dict[str, Any] = {"image": (io.BytesIO(data), "image.png")}
    if public:
        form["public"] = "true"
    response = api.client.post("/v1/stamps", data=form, content_type="multipart/form-data",
                               headers=auth or api.auth)
    assert response.status_code == 202, response.get_json()
    receipt_id: str = response.get_json()["id"]
    if hash_now:
        hash_receipt_image(api.services.engine, api.services.uploads, receipt_id,
                           keep_images=api.services.settings.keep_images)
    return receipt_id


def search(api: Api, data: bytes, auth: dict[str, str] | None = None) -> Any:
    return api.client.post("/v1/search", data={"image": (io.BytesIO(data), "copy.jpg")},
                           content_type="multipart/form-data",
                           headers=api.auth if auth is None else auth)


def match_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [m["id"] for m in response.get_json()["matches"]]


def test_a_copy_with_a_badge_no_edge_view_cuts_away_is_found_through_its_cells(
        search_api: Api) -> None:
    """Seed 33's badge copy matches none of the whole views (tests/unit/test_perceptual.py):
    the search looks up the query's cells then, and those the badge spared meet the original's."""
    for seed in OTHERS:
        register(search_api, picture_png(seed))
    original = register(search_api, picture_png(33))
    assert len(hashes_of_receipt(search_api, original)) == 19 + 9  # views, then cells
    assert match_ids(search(search_api, ALTERATIONS["badge_corner_5"](picture(33), 33))) == [
        original]


def hashes_of_receipt(api: Api, receipt_id: str) -> list[Any]:
    with api.services.engine.connect() as conn:
        return hashes_of(conn, receipt_id)


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_an_altered_copy_finds_its_original(search_api: Api, alteration: str) -> None:
    for seed in OTHERS:
        register(search_api, picture_png(seed))
    original = register(search_api, picture_png(ORIGINAL))
    copy = ALTERATIONS[alteration](picture(ORIGINAL), ORIGINAL)
    response = search(search_api, copy)
    assert match_ids(response) == [original]
    match = response.get_json()["matches"][0]
    assert 0 < match["similarity"] <= 1 and 0 <= match["distance"] <= 256
    assert set(match) >= {"id", "distance", "similarity", "stamped_at", "tsa_times"}


def test_an_unrelated_image_finds_nothing(search_api: Api) -> None:
    for seed in (ORIGINAL, *OTHERS):
        register(search_api, picture_png(seed))
    assert match_ids(search(search_api, encode(picture(999), "JPEG", quality=80))) == []


def test_equally_close_matches_are_oldest_first(search_api: Api) -> None:
    first = register(search_api, picture_png(ORIGINAL))
    second = register(search_api, picture_png(ORIGINAL))
    response = search(search_api, picture_png(ORIGINAL))
    assert match_ids(response) == [first, second]
    assert response.get_json()["earliest"]["id"] == first
    assert response.get_json()["total"] == 2


SERIES = 55  # renders of one scene registered before the original: more than MAX_MATCHES


def register_series(api: Api) -> list[str]:
    """SERIES renders of the ORIGINAL scene (other seeds of one prompt), hashed in one job."""
    ids = [register(api, encode(series_picture(ORIGINAL, variant), "PNG"), hash_now=False)
           for variant in range(1, SERIES + 1)]
    assert hash_pending(api.services) == SERIES
    return ids


def test_the_original_is_found_among_a_series_of_similar_renders(search_api: Api) -> None:
    series = register_series(search_api)
    original = register(search_api, picture_png(ORIGINAL))
    for query in (picture_png(ORIGINAL), encode(picture(ORIGINAL), "JPEG", quality=60)):
        body = search(search_api, query).get_json()
        assert body["matches"][0]["id"] == original  # closest first, never crowded out
        assert len(body["matches"]) == MAX_MATCHES
        distances = [m["distance"] for m in body["matches"]]
        assert distances == sorted(distances)
        assert MAX_MATCHES < body["total"] <= len(series) + 1  # the series too, past the cap
        # The series registered earlier is other pictures: the claim is the original's.
        assert body["earliest"]["id"] == original


def test_the_priority_claim_is_the_earliest_copy_of_the_same_picture(search_api: Api) -> None:
    earlier_copy = register(search_api, encode(picture(ORIGINAL), "JPEG", quality=70))
    register_series(search_api)
    original = register(search_api, picture_png(ORIGINAL))
    body = search(search_api, picture_png(ORIGINAL)).get_json()
    # The two copies of the picture come before every render of the series (equally close:
    # the older first).
    assert {m["id"] for m in body["matches"][:2]} == {original, earlier_copy}
    assert body["earliest"]["id"] == earlier_copy  # registered first: the priority claim
    assert MAX_MATCHES < body["total"] <= SERIES + 2


def test_no_match_answers_no_claim(search_api: Api) -> None:
    register(search_api, picture_png(ORIGINAL))
    body = search(search_api, encode(picture(999), "JPEG", quality=80)).get_json()
    assert body == {"matches": [], "earliest": None, "total": 0}


def test_another_keys_private_receipt_is_never_returned(search_api: Api) -> None:
    _, other_secret = search_api.new_key("other")
    other = {"Authorization": f"Bearer {other_secret}"}
    private = register(search_api, picture_png(ORIGINAL), auth=other)
    assert match_ids(search(search_api, picture_png(ORIGINAL))) == []
    assert match_ids(search(search_api, picture_png(ORIGINAL), auth={})) == []
    assert match_ids(search(search_api, picture_png(ORIGINAL), auth=other)) == [private]


def test_public_receipts_are_found_by_anyone_with_fewer_fields(search_api: Api) -> None:
    _, other_secret = search_api.new_key("other")
    public = register(search_api, picture_png(ORIGINAL), public=True,
                      auth={"Authorization": f"Bearer {other_secret}"})
    mine = search(search_api, picture_png(ORIGINAL))
    anonymous = search(search_api, picture_png(ORIGINAL), auth={})
    assert match_ids(mine) == match_ids(anonymous) == [public]
    assert set(anonymous.get_json()["matches"][0]) == {
        "id", "distance", "similarity", "stamped_at", "tsa_times", "created_at", "image_sha256"}


def test_a_bad_key_is_401_not_anonymous(search_api: Api) -> None:
    response = search(search_api, picture_png(ORIGINAL), auth={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def kept(api: Api, data: bytes) -> bytes | None:
    """The upload kept for hashing, if any (whichever store the settings chose)."""
    with api.services.engine.connect() as conn:
        return api.services.uploads.load(conn, hashlib.sha256(data).hexdigest())


def test_registration_signals_hashing_and_the_job_drops_the_upload(search_api: Api) -> None:
    image = picture_png(ORIGINAL)
    search_api.services.redis.delete(hash_flag_key(search_api.services.settings))
    queue = background_queue_for(search_api.services)
    queue.empty()
    receipt_id = register(search_api, image, hash_now=False)
    deadline = time.monotonic() + 5  # the signal thread enqueues ~20 ms after the commit
    while not queue.jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [job.func_name for job in queue.jobs] == [HASH_JOB]
    engine = search_api.services.engine
    with engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == [receipt_id]
        assert hashes_of(conn, receipt_id) == []
    assert kept(search_api, image) == image
    uploads = search_api.services.uploads
    assert hash_receipt_image(engine, uploads, receipt_id, keep_images=False) > 1
    assert hash_receipt_image(engine, uploads, receipt_id, keep_images=False) == 0  # done
    assert kept(search_api, image) is None
    with engine.connect() as conn:
        assert len(hashes_of(conn, receipt_id)) > 1
        assert receipts_to_hash(conn, 10) == []


def test_keep_images_keeps_the_upload(make_api: Callable[..., Api]) -> None:
    api = make_api(max_upload_bytes=UPLOAD_LIMIT, keep_images=True)
    register(api, picture_png(ORIGINAL))
    assert kept(api, picture_png(ORIGINAL)) == picture_png(ORIGINAL)


def test_same_bytes_again_copy_the_hashes_after_the_upload_is_gone(search_api: Api) -> None:
    first = register(search_api, picture_png(ORIGINAL))
    second = register(search_api, picture_png(ORIGINAL), hash_now=False)
    engine, uploads = search_api.services.engine, search_api.services.uploads
    with engine.begin() as conn:  # as if the first job had dropped it just now
        uploads.drop(conn, hashlib.sha256(picture_png(ORIGINAL)).hexdigest())
    hash_receipt_image(engine, uploads, second, keep_images=False)
    with engine.connect() as conn:
        assert hashes_of(conn, second) == [
            h.__class__(second, h.view, h.phash, h.dhash256) for h in hashes_of(conn, first)]


def test_the_same_bytes_uploaded_again_leave_no_upload_behind(search_api: Api) -> None:
    image = picture_png(ORIGINAL)
    register(search_api, image)  # hashed: its upload is dropped
    assert kept(search_api, image) is None
    second = register(search_api, image, hash_now=False)
    assert kept(search_api, image) == image  # kept again: the first copy was gone
    assert hash_pending(search_api.services) == 1  # copies the first receipt's hashes
    assert kept(search_api, image) is None
    with search_api.services.engine.connect() as conn:
        assert len(hashes_of(conn, second)) > 1


def test_keep_images_keeps_the_upload_of_the_same_bytes_too(
        make_api: Callable[..., Api]) -> None:
    api = make_api(max_upload_bytes=UPLOAD_LIMIT, keep_images=True)
    register(api, picture_png(ORIGINAL))
    register(api, picture_png(ORIGINAL))
    assert kept(api, picture_png(ORIGINAL)) == picture_png(ORIGINAL)


def test_hash_only_receipts_get_no_hashes(search_api: Api) -> None:
    response = search_api.client.post(
        "/v1/stamps", data=json.dumps({"sha256": "ab" * 32}), content_type="application/json",
        headers=search_api.auth)
    receipt_id = response.get_json()["id"]
    services = search_api.services
    assert hash_receipt_image(services.engine, services.uploads, receipt_id,
                              keep_images=False) == 0
    with services.engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == []


def test_non_image_is_a_problem(search_api: Api) -> None:
    response = search(search_api, b"%PDF-1.7 not an image at all")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "urn:chronoseal:problem:unreadable-image"


def test_oversized_upload_is_a_problem(make_api: Callable[..., Api]) -> None:
    api = make_api(max_upload_bytes=64 * 1024)
    response = search(api, picture_png(ORIGINAL) + b"\0" * 64 * 1024)
    assert response.status_code == 413
    assert response.get_json()["type"] == "urn:chronoseal:problem:payload-too-large"


def test_decompression_bomb_is_a_problem(search_api: Api) -> None:
    response = search(search_api, bomb_png(10_000))  # 100 Mpx in about 15 KB
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "urn:chronoseal:problem:image-too-many-pixels"


def test_missing_image_and_wrong_content_type_are_problems(search_api: Api) -> None:
    no_image = search_api.client.post("/v1/search", data={}, content_type="multipart/form-data",
                                      headers=search_api.auth)
    assert no_image.status_code == 400
    as_json = search_api.client.post("/v1/search", json={"image": "x"}, headers=search_api.auth)
    assert as_json.status_code == 415


def work_hash_jobs(api: Api) -> None:
    """Run the queued hashing jobs in a real RQ worker (stamp jobs are dropped: no TSA here)."""
    signals_of(api.app).flush()  # what the API's signal threads do ~20 ms after a commit
    Queue(api.services.settings.queue_name, connection=api.services.redis).empty()
    context = bootstrap.install(bootstrap.build_context(api.services))
    try:
        bootstrap.make_rq_worker(context).work(burst=True, logging_level="WARNING")
    finally:
        context.stamper.close()
        bootstrap._context = None  # noqa: SLF001 - the process-wide context of workers


def test_the_worker_hashes_what_the_api_enqueued(search_api: Api) -> None:
    receipt_id = register(search_api, picture_png(ORIGINAL), hash_now=False)
    assert match_ids(search(search_api, picture_png(ORIGINAL))) == []  # not hashed yet
    work_hash_jobs(search_api)
    assert match_ids(search(search_api, picture_png(ORIGINAL))) == [receipt_id]


def test_the_sweep_re_enqueues_hashing_that_redis_lost(search_api: Api) -> None:
    receipt_id = register(search_api, picture_png(ORIGINAL), hash_now=False)
    signals_of(search_api.app).flush()
    queue = background_queue_for(search_api.services)
    queue.empty()  # Redis lost the job
    context = bootstrap.build_context(search_api.services)
    try:
        context.sweep()
    finally:
        context.stamper.close()
    assert [job.func_name for job in queue.jobs] == [HASH_JOB]
    bootstrap.install(bootstrap.build_context(search_api.services))
    try:  # run it without a flush: the sweep's job alone does the work
        bootstrap.make_rq_worker(bootstrap.current()).work(burst=True, logging_level="WARNING")
    finally:
        bootstrap.current().stamper.close()
        bootstrap._context = None  # noqa: SLF001
    assert match_ids(search(search_api, picture_png(ORIGINAL))) == [receipt_id]


def test_two_hashing_jobs_share_the_work_without_hashing_twice(search_api: Api) -> None:
    ids = [register(search_api, picture_png(seed), hash_now=False) for seed in OTHERS]
    services = search_api.services
    first = hash_pending(services)
    second = hash_pending(services)  # what a second background worker finds: claimed or done
    assert (first, second) == (len(ids), 0)
    with services.engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == []
        assert all(len(hashes_of(conn, receipt_id)) > 1 for receipt_id in ids)


def test_a_claimed_receipt_is_left_to_its_claimer(search_api: Api) -> None:
    receipt_id = register(search_api, picture_png(ORIGINAL), hash_now=False)
    services = search_api.services
    services.redis.set(f"chronoseal:{services.settings.queue_name}:hash-claim:{receipt_id}", 1,
                       ex=60)  # another worker is on it
    assert hash_pending(services) == 0
    with services.engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == [receipt_id]


def test_undecodable_uploads_are_not_kept_for_hashing(search_api: Api) -> None:
    data = b"\x89PNG\r\n\x1a\n but no image follows"
    register(search_api, data, hash_now=False)
    assert kept(search_api, data) is None
    with search_api.services.engine.connect() as conn:
        assert receipts_to_hash(conn, 10) == []


def test_hashes_of_several_receipts_are_stored_in_one_transaction(search_api: Api) -> None:
    from sqlalchemy import event

    ids = [register(search_api, picture_png(seed), hash_now=False) for seed in OTHERS]
    engine = search_api.services.engine
    commits: list[int] = []
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        assert hash_pending(search_api.services) == len(ids)
    finally:
        event.remove(engine, "commit", listener)
    assert len(commits) == 1  # the views of all three (and their uploads dropped with them, or
    # their files deleted after the commit)


def test_a_chunk_reads_and_stores_in_a_few_statements_per_chunk(
        search_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is known is read per chunk and stored per chunk: per image only its upload is
    loaded (the per-image reads and writes cost more CPU than the decode, bench/hashing.py)."""
    from sqlalchemy import event

    import service.usecases.hashing as hashing

    ids = [register(search_api, picture_png(seed), hash_now=False) for seed in range(20, 28)]
    monkeypatch.setattr(hashing, "STORE_EVERY", len(ids))
    engine = search_api.services.engine
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert hash_pending(search_api.services) == len(ids)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    # One chunk: the work list twice, three reads, one load per image (database uploads), and
    # the stores: not the seven statements per image it took one by one.
    assert len(statements) <= 2 * len(ids) + 12, statements
    with engine.connect() as conn:
        assert all(len(hashes_of(conn, receipt_id)) > 1 for receipt_id in ids)


def test_the_same_bytes_twice_in_one_chunk_are_decoded_once(
        search_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.usecases.hashing as hashing

    first = register(search_api, picture_png(ORIGINAL), hash_now=False)
    second = register(search_api, picture_png(ORIGINAL), hash_now=False)
    decodes: list[int] = []
    real = hashing.registration_hashes_and_picture

    def counted(*args: Any, **kwargs: Any) -> Any:
        decodes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashing, "registration_hashes_and_picture", counted)
    assert hash_pending(search_api.services) == 2
    assert len(decodes) == 1
    with search_api.services.engine.connect() as conn:
        views = [(h.view, h.phash, h.dhash256) for h in hashes_of(conn, first)]
        assert views and views == [(h.view, h.phash, h.dhash256) for h in hashes_of(conn, second)]
        assert receipts_to_hash(conn, 10) == []
    assert kept(search_api, picture_png(ORIGINAL)) is None


def test_a_backlog_beyond_one_chunk_asks_another_background_worker(
        search_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """More waiting than one chunk: a second hashing job is queued for another background
    worker (one at most: the hashing flag), so a burst's backlog is hashed on every core."""
    import service.usecases.hashing as hashing

    services = search_api.services
    for seed in (ORIGINAL, *OTHERS):
        register(search_api, picture_png(seed), hash_now=False)
    signals_of(search_api.app).close()  # the API's own signal is sent, and no more come
    queue = background_queue_for(services)
    queue.empty()
    services.redis.delete(hash_flag_key(services.settings))
    monkeypatch.setattr(hashing, "STORE_EVERY", 2)
    assert hash_pending(services) == 4
    assert [job.func_name for job in queue.jobs] == [HASH_JOB]  # one, however many chunks


def test_a_backlog_within_one_chunk_asks_nobody(search_api: Api) -> None:
    services = search_api.services
    register(search_api, picture_png(ORIGINAL), hash_now=False)
    signals_of(search_api.app).close()  # the API's own signal is sent, and no more come
    queue = background_queue_for(services)
    queue.empty()
    services.redis.delete(hash_flag_key(services.settings))
    assert hash_pending(services) == 1
    assert queue.jobs == []


def test_a_replay_after_hashing_leaves_no_upload_behind(search_api: Api) -> None:
    image = picture_png(ORIGINAL)
    headers = {**search_api.auth, "Idempotency-Key": "replay-1"}

    def post() -> Any:
        return search_api.client.post("/v1/stamps", headers=headers,
                                      data={"image": (io.BytesIO(image), "image.png")},
                                      content_type="multipart/form-data")

    receipt_id = post().get_json()["id"]
    services = search_api.services
    hash_receipt_image(services.engine, services.uploads, receipt_id, keep_images=False)
    assert kept(search_api, image) is None
    again = post()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == receipt_id
    assert kept(search_api, image) is None  # nothing waits for it: nothing may stay


class _Clock:
    """perf_counter/thread_time/sleep for hash_pending: each chunk takes 0.1 s of wall time
    and `share` of it on the CPU."""

    def __init__(self, share: float) -> None:
        self.share, self.wall, self.cpu, self.sleeps = share, 0.0, 0.0, []

    def perf_counter(self) -> float:
        self.wall += 0.05
        return self.wall

    def thread_time(self) -> float:
        self.cpu += 0.05 * self.share
        return self.cpu

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.mark.parametrize(("share", "backs_off"), [(0.1, True), (0.9, False)])
def test_hashing_backs_off_while_the_machine_is_busy(
        search_api: Api, monkeypatch: pytest.MonkeyPatch, share: float, backs_off: bool) -> None:
    import service.usecases.hashing as perceptual

    ids = [register(search_api, picture_png(seed), hash_now=False) for seed in OTHERS]
    clock = _Clock(share)
    monkeypatch.setattr(perceptual, "time", clock)
    monkeypatch.setattr(perceptual, "STORE_EVERY", 2)
    assert hash_pending(search_api.services) == len(ids)
    # Busy: the first chunk (2 images) got 10% of its time, so one image per back-off follows.
    assert clock.sleeps == ([perceptual.BACKOFF_S] * 2 if backs_off else [])
