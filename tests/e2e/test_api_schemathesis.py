"""Schemathesis over /openapi.json of a started `chronoseal serve` (gunicorn, real database
and Redis): a bounded run with a fixed seed must find no 5xx and no disagreement between the
schema and the code (tests/e2e/schemathesis.toml lists the checks and their exceptions)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from service.runtime.redis_server import free_port
from service.settings import SETTINGS
from tests.e2e.conftest import REDIS_URL

REPO = Path(__file__).resolve().parents[2]
CLI = "import sys; from service.cli import main; sys.exit(main(sys.argv[1:]))"
CONFIG = Path(__file__).with_name("schemathesis.toml")
START_TIMEOUT_S = 30  # migrations, then gunicorn forks; slow on a busy 2-core machine
RUN_TIMEOUT_S = 240  # about 20 s here; generous for a loaded CI machine
MAX_EXAMPLES = 5  # per operation in fuzzing; the coverage phase adds its boundary cases
SEED = 11  # fixed, so a failure here reproduces with the command printed in the output


def test_the_api_conforms_to_its_openapi_document(tmp_path, queue_name) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"),
           "CHRONOSEAL_QUEUE": queue_name, "REDIS_URL": REDIS_URL,
           "CHRONOSEAL_CONFIG": str(tmp_path / "absent.toml")}
    env.pop("DATABASE_URL", None)
    # One client from 127.0.0.1 sends every request: the limits would answer 429 (documented,
    # tests/e2e/test_api_rate_limits.py) instead of exercising the routes.
    env.update({s.env: "off" for s in SETTINGS if s.name.startswith("rate_limit_")})
    created = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "st"],
                             env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    secret = created.stdout.splitlines()[-1]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "--port", str(port), "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(CONFIG),
             "run",
             f"{base}/openapi.json", "-H", f"Authorization: Bearer {secret}",
             "--phases", "examples,coverage,fuzzing", "--max-examples", str(MAX_EXAMPLES),
             "--seed", str(SEED), "--workers", "1", "--continue-on-failure",
             "--generation-database", "none", "--request-timeout", "30"],
            capture_output=True, text=True, cwd=tmp_path, timeout=RUN_TIMEOUT_S,
            env={**os.environ, "NO_COLOR": "1"})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    report = run.stdout[-12000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert "No issues found" in report or " passed" in report, report  # it ran and said so
    assert secret not in log_path.read_text()
