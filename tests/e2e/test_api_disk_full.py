"""A full disk: registrations get 507 problem+json with Retry-After, nothing is kept, /healthz
says so, and registrations are accepted again by themselves once space is freed.

The uploads directory is on a small tmpfs the test fills (tests/support/small_fs.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.usecases import disk
from tests.e2e.conftest import Api
from tests.e2e.test_api_ready import stamping_worker
from tests.support.pictures import picture_png
from tests.support.small_fs import fill, small_filesystem

SMALL_FS_BYTES = 4 * 1024 * 1024  # a few uploads, then full
RESERVE_BYTES = 512 * 1024
INSUFFICIENT_STORAGE = "urn:chronoseal:problem:insufficient-storage"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "small", SMALL_FS_BYTES) as path:
        yield path


def _digest_only(api: Api, data: bytes) -> object:
    return api.client.post("/v1/stamps", data=json.dumps(
        {"sha256": hashlib.sha256(data).hexdigest()}), content_type="application/json",
        headers=api.auth)


def _refused(response: object) -> None:
    assert response.status_code == 507, response.get_json()  # type: ignore[attr-defined]
    assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    assert response.get_json()["type"] == INSUFFICIENT_STORAGE  # type: ignore[attr-defined]
    assert int(response.headers["Retry-After"]) > 0  # type: ignore[attr-defined]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_full_disk_refuses_registrations_until_space_is_freed(
        make_api: Callable[..., Api], small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = small_disk / "uploads"
    api = make_api(uploads_dir=str(uploads), disk_reserve_bytes=RESERVE_BYTES)
    monkeypatch.setattr(disk, "DISK_CHECK_INTERVAL_S", 0.0)  # every request reads: no waiting
    assert api.post_image(picture_png(1)).status_code == 202
    assert api.client.get("/healthz").get_json()["disk"]["state"] != disk.FULL
    filler = fill(small_disk)
    kept, counts = _files(uploads), api.counts()

    _refused(api.post_image(picture_png(2)))
    _refused(_digest_only(api, picture_png(3)))
    assert api.counts() == counts and _files(uploads) == kept  # nothing stored, nothing left
    with stamping_worker(api.services):  # else liveness is 503 for want of a worker
        health = api.client.get("/healthz")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded" and body["disk"]["state"] == disk.FULL
    assert body["disk"]["free_bytes"] <= RESERVE_BYTES

    filler.unlink()  # an operator frees space: no restart
    assert api.post_image(picture_png(2)).status_code == 202
    assert _digest_only(api, picture_png(3)).status_code == 202
    assert api.client.get("/healthz").get_json()["disk"]["state"] != disk.FULL


def test_a_write_that_finds_no_space_is_507_and_keeps_nothing(
        make_api: Callable[..., Api], small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = small_disk / "uploads"
    api = make_api(uploads_dir=str(uploads), disk_reserve_bytes=0)
    # The reading taken before the fill stays: the write itself finds the disk full (ENOSPC).
    monkeypatch.setattr(disk, "DISK_CHECK_INTERVAL_S", 3600.0)
    assert api.post_image(picture_png(1)).status_code == 202
    filler = fill(small_disk)
    kept, counts = _files(uploads), api.counts()
    _refused(api.post_image(picture_png(2)))
    assert api.counts() == counts and _files(uploads) == kept  # the half-written file is gone
    _refused(_digest_only(api, picture_png(3)))  # told without trying: the disk was full
    filler.unlink()
    monkeypatch.setattr(disk, "DISK_CHECK_INTERVAL_S", 0.0)
    assert api.post_image(picture_png(2)).status_code == 202
