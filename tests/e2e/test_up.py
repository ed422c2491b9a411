"""`chronoseal up` (what `make run` starts): every part comes up, an upload is stamped through
the API, and SIGTERM stops every child. Redis: the shared one, with a queue of its own."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.images import png_bytes
from tests.support.running_up import START_TIMEOUT_S, running_up


def test_up_serves_stamps_and_stops_cleanly(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        posted = requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30,
                               files={"image": ("a.png", png_bytes(16, 16), "image/png")})
        assert posted.status_code == 202, posted.text
        url = f"{up.api}{posted.json()['links']['self']}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while (receipt := requests.get(url, headers=up.auth, timeout=5).json())["status"] \
                != "stamped":
            assert time.monotonic() < deadline, receipt
            time.sleep(0.2)
        # config/tsa.toml's url = "builtin" follows CHRONOSEAL_TSA_PORT, so the name stays.
        assert [t["tsa"] for t in receipt["tokens"]] == ["builtin"]
    assert up.exit_code == 0, up.log.read_text()[-3000:]
    for port in (up.api_port, up.tsa_port):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            raise AssertionError(f"something still answers on port {port}")
        except requests.ConnectionError:
            pass
