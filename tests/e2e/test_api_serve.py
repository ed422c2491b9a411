"""`chronoseal serve` under gunicorn: answers; to a non-terminal it logs JSON lines (gunicorn's
own lines too), one per request with the request id, and never the API key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from service.runtime.redis_server import free_port
from tests.e2e.conftest import REDIS_URL

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30  # migrations, then gunicorn forks; slow on a busy 2-core machine
CLI = "import sys; from service.cli import main; sys.exit(main(sys.argv[1:]))"


def test_serve_answers_and_keeps_keys_out_of_the_log(tmp_path, queue_name):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"),
           "CHRONOSEAL_QUEUE": queue_name, "REDIS_URL": REDIS_URL,
           "CHRONOSEAL_CONFIG": str(tmp_path / "absent.toml")}
    env.pop("DATABASE_URL", None)
    # `keys` creates no database: the schema is made first, as a deploy does (`db upgrade`).
    subprocess.run([sys.executable, "-c", CLI, "db", "upgrade"], env=env, check=True, cwd=tmp_path,
                   capture_output=True)
    created = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "serve"],
                             env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    secret = created.stdout.splitlines()[-1]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "--port", str(port), "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        # No worker runs on this test's queue: liveness says so (uploads are still taken).
        assert health.status_code == 503, health.text
        assert health.json()["failing"] == ["workers"]
        headers = {"Authorization": f"Bearer {secret}"}
        posted = requests.post(f"{base}/v1/stamps", headers={**headers, "X-Request-Id": "srv-1"},
                               timeout=10, files={"image": ("a.bin", b"\x00" * 1000)})
        assert posted.status_code == 202
        assert posted.headers["X-Request-Id"] == "srv-1"
        assert requests.get(f"{base}/v1/stamps", headers=headers, timeout=10).status_code == 200
        assert requests.get(f"{base}/v1/stamps", timeout=10).status_code == 401
        # The C2PA signing keys were made at start (issue 17), and its root is published.
        made = (tmp_path / "data" / "c2pa" / "root-cert.pem").read_bytes()
        assert requests.get(f"{base}/c2pa/root.pem", timeout=10).content == made
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    log_text = log_path.read_text()
    lines = [json.loads(line) for line in log_text.splitlines()]  # every line is JSON
    assert any(line["logger"].startswith("gunicorn") for line in lines)
    (upload,) = [line for line in lines if line.get("request_id") == "srv-1"]
    assert (upload["method"], upload["route"], upload["status"]) == ("POST", "/v1/stamps", 202)
    assert upload["receipt_id"] == posted.json()["id"]
    assert secret not in log_text and secret[len("cs_"):] not in log_text
