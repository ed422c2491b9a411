"""`chronoseal up` with its data directory on a small tmpfs that the test fills: registrations
get 507, /healthz says the disk is full, every receipt accepted before is still stamped, and
once space is freed registrations are accepted again, without a restart."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.pictures import picture_png
from tests.support.running_up import START_TIMEOUT_S, RunningUp, running_up
from tests.support.small_fs import fill, small_filesystem

SMALL_FS_BYTES = 64 * 1024 * 1024  # TSA keys, SQLite, metrics files, a few uploads
RESERVE_BYTES = 1024 * 1024
INSUFFICIENT_STORAGE = "urn:chronoseal:problem:insufficient-storage"


def _until(check: Callable[[], bool], what: str, up: RunningUp) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not check():
        assert time.monotonic() < deadline, (what, up.log.read_text()[-3000:])
        time.sleep(0.2)


def _answer_is(status: int, answers: list[requests.Response],
               send: Callable[[], requests.Response]) -> bool:
    answers.append(send())
    return answers[-1].status_code == status


def test_a_full_data_disk_loses_nothing_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOSEAL_DISK_RESERVE_BYTES", str(RESERVE_BYTES))
    monkeypatch.setenv("CHRONOSEAL_MIN_FREE_DISK_BYTES", str(2 * RESERVE_BYTES))  # /readyz
    # Off the full disk: prometheus_client's mmapped files take SIGBUS when a new page of
    # theirs finds no space (a known gap, docs/operations.md "A full disk").
    monkeypatch.setenv("CHRONOSEAL_METRICS_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("CHRONOSEAL_SWEEP_INTERVAL_S", "1")  # stamping retried soon after
    monkeypatch.setenv("CHRONOSEAL_STALE_AFTER_S", "1")
    with small_filesystem(tmp_path / "data", SMALL_FS_BYTES) as data, \
            running_up(tmp_path) as up:

        def upload(seed: int) -> requests.Response:
            return requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30,
                                 files={"image": ("p.png", picture_png(seed))})

        def digest(seed: int) -> requests.Response:
            return requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30, json={
                "sha256": hashlib.sha256(picture_png(seed)).hexdigest()})

        def stamped(receipt_id: str) -> bool:
            answer = requests.get(f"{up.api}/v1/stamps/{receipt_id}", headers=up.auth,
                                  timeout=30)
            return answer.status_code == 200 and answer.json()["status"] == "stamped"

        accepted = [upload(1).json()["id"]]
        _until(lambda: stamped(accepted[0]), "first receipt stamped", up)
        second = upload(2)
        assert second.status_code == 202, second.text
        accepted.append(second.json()["id"])  # perhaps not stamped before the disk is full
        filler = fill(data)

        answers: list[requests.Response] = []
        _until(lambda: _answer_is(507, answers, lambda: upload(3)), "a 507", up)
        assert answers[-1].json()["type"] == INSUFFICIENT_STORAGE
        assert int(answers[-1].headers["Retry-After"]) > 0
        # The other API process sees the full disk within DISK_CHECK_INTERVAL_S (or at its write).
        _until(lambda: _answer_is(507, answers, lambda: digest(4)), "a digest 507", up)
        def degraded() -> bool:  # every process sees it within DISK_CHECK_INTERVAL_S
            health = requests.get(f"{up.api}/healthz", timeout=10)
            assert health.status_code == 200
            return bool(health.json()["status"] == "degraded"
                        and health.json()["disk"]["state"] == "full")

        for _ in range(4):  # both API processes, whichever answers
            _until(degraded, "/healthz degraded", up)

        filler.unlink()
        _until(lambda: _answer_is(202, answers, lambda: upload(3)), "a 202 again", up)
        accepted.append(answers[-1].json()["id"])
        # Each API process re-reads the free space within DISK_CHECK_INTERVAL_S: the other one
        # may still refuse for that long (a refusal stores nothing, so asking again is safe).
        _until(lambda: _answer_is(202, answers, lambda: digest(4)), "a digest 202 again", up)
        accepted.append(answers[-1].json()["id"])
        for receipt_id in accepted:  # nothing accepted is lost
            _until(lambda receipt_id=receipt_id: stamped(receipt_id), receipt_id, up)
        _until(lambda: requests.get(f"{up.api}/healthz", timeout=10).json()["status"] == "ok",
               "/healthz ok again", up)
    assert up.exit_code == 0, up.log.read_text()[-3000:]
