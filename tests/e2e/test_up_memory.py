"""Memory of the API under large anonymous search queries, on the real service (`chronoseal up`).

Sixteen concurrent queries of 49 megapixels, as PNG (refused from the header: over the query's
pixel bound) and as JPEG (decoded at 1/8 scale), then four at the query bound (25 megapixels of
PNG, decoded whole, one budget's worth at a time per process): every gunicorn worker stays at or
under MAX_API_RSS_MIB at its peak (VmHWM), and gives the memory back afterwards (VmRSS).
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from service.evidence.perceptual import MAX_QUERY_PIXELS
from tests.support.running_up import running_up

MAX_API_RSS_MIB = 300  # issue 11: each API process under this with 16 such queries at once
RETURNED_MIB = 60  # afterwards a process is back within this of where it started
CONCURRENT = 16
HUGE_SIDE = 7000  # 49 megapixels
AT_BOUND_SIDE = int(MAX_QUERY_PIXELS**0.5)  # 5000: the largest PNG a query may decode
AT_BOUND_QUERIES = 4  # more than one per process: the second waits for the first
QUERY_TIMEOUT_S = 120


def _flat(side: int, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 160)).save(out, fmt)
    return out.getvalue()  # one colour: a few hundred KB for 49 megapixels


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids.extend(int(child) for child in text)
    return kids


def _api_workers(up_pid: int) -> list[int]:
    """The gunicorn workers: children of up's child that runs `serve` (the gunicorn master)."""
    for child in _children(up_pid):
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"serve" in argv:
            deadline = time.monotonic() + 30
            while len(workers := _children(child)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            return workers
    raise AssertionError("no API process under chronoseal up")


def _search_all(api: str, data: bytes, count: int) -> list[requests.Response]:
    def search(_: int) -> requests.Response:
        return requests.post(f"{api}/v1/search", files={"image": ("q", data)},
                             timeout=QUERY_TIMEOUT_S)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(search, range(count)))


def test_large_queries_keep_each_api_process_small(tmp_path: Path) -> None:
    png, jpeg, at_bound = _flat(HUGE_SIDE, "PNG"), _flat(HUGE_SIDE, "JPEG"), _flat(
        AT_BOUND_SIDE, "PNG")
    with running_up(tmp_path) as up:
        workers = _api_workers(up.process.pid)
        assert len(workers) >= 2
        started = {pid: _status(pid)["VmRSS"] for pid in workers}

        refused = _search_all(up.api, png, CONCURRENT)
        assert {r.status_code for r in refused} == {413}, refused[0].text
        assert refused[0].json()["type"] == "urn:chronoseal:problem:image-too-many-pixels"
        decoded_reduced = _search_all(up.api, jpeg, CONCURRENT)
        assert {r.status_code for r in decoded_reduced} == {200}, decoded_reduced[0].text
        at_limit = _search_all(up.api, at_bound, AT_BOUND_QUERIES)
        codes = [r.status_code for r in at_limit]
        assert set(codes) <= {200, 503} and 200 in codes, [r.text for r in at_limit]
        for busy in (r for r in at_limit if r.status_code == 503):
            assert busy.json()["type"] == "urn:chronoseal:problem:decode-busy"
            assert int(busy.headers["Retry-After"]) > 0

        peaks = {pid: _status(pid)["VmHWM"] for pid in workers}
        assert max(peaks.values()) <= MAX_API_RSS_MIB, peaks
        assert max(peaks[pid] - started[pid] for pid in workers) > 50, peaks  # it did decode
        deadline = time.monotonic() + 30
        while True:  # freed memory goes back to the system (runtime.memory)
            now = {pid: _status(pid)["VmRSS"] for pid in workers}
            if all(now[pid] <= started[pid] + RETURNED_MIB for pid in workers):
                break
            assert time.monotonic() < deadline, (started, now)
            time.sleep(0.2)
    assert up.exit_code == 0, up.log.read_text()[-3000:]
