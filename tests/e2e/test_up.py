"""`chronoseal up` (what `make run` starts): every part comes up, an upload is stamped through
the API, and SIGTERM stops every child. Redis: the shared one, with a queue of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
import requests
from rq import Queue

from service.runtime.redis_server import free_port
from tests.support.images import png_bytes

CLI = "import sys; from service.cli import main; sys.exit(main())"
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90  # first start creates TSA keys and the schema; slow on a busy machine
STOP_TIMEOUT_S = 30  # children get SIGTERM, then SIGKILL after the supervisor's grace


def _wait(url: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered\n{log.read_text()[-3000:]}")


def test_up_serves_stamps_and_stops_cleanly(tmp_path: Path) -> None:
    api, tsa = free_port(), free_port()
    queue = f"test-up-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"),
           "CHRONOSEAL_API_PORT": str(api), "CHRONOSEAL_TSA_PORT": str(tsa),
           "REDIS_URL": "redis://127.0.0.1:6379/0", "CHRONOSEAL_QUEUE": queue,
           "PYTHONPATH": str(REPO)}
    env.pop("DATABASE_URL", None)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-c", CLI, "up", "--workers", "1"], env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{tsa}/certs", START_TIMEOUT_S, up, log)
        _wait(f"http://127.0.0.1:{api}/healthz", START_TIMEOUT_S, up, log)
        created = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "up"],
                                 env=env, capture_output=True, text=True, check=True)
        secret = next(w for w in created.stdout.split() if w.startswith("cs_"))
        auth = {"Authorization": f"Bearer {secret}"}
        posted = requests.post(f"http://127.0.0.1:{api}/v1/stamps", headers=auth, timeout=30,
                               files={"image": ("a.png", png_bytes(16, 16), "image/png")})
        assert posted.status_code == 202, posted.text
        url = f"http://127.0.0.1:{api}{posted.json()['links']['self']}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while (receipt := requests.get(url, headers=auth, timeout=5).json())["status"] != "stamped":
            assert time.monotonic() < deadline, receipt
            time.sleep(0.2)
        # config/tsa.toml's url = "builtin" follows CHRONOSEAL_TSA_PORT, so the name stays.
        assert [t["tsa"] for t in receipt["tokens"]] == ["builtin"]
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(STOP_TIMEOUT_S)
        Queue(queue, connection=redis.Redis.from_url("redis://127.0.0.1:6379/0")).delete()
    assert code == 0, log.read_text()[-3000:]
    for port in (api, tsa):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            raise AssertionError(f"something still answers on port {port}")
        except requests.ConnectionError:
            pass
