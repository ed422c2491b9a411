"""`chronoseal serve` (gunicorn) in a subprocess, on a free port, with a fresh data dir, a
queue of its own and an API key, for tests that need the real server:

    with serving(tmp_path, queue, CHRONOSEAL_X="1") as served:
        requests.get(f"{served.url}/healthz") ... served.secret ... served.log.read_text()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from service.runtime.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]
CLI = "import sys; from service.cli import main; sys.exit(main(sys.argv[1:]))"
START_TIMEOUT_S = 30  # migrations, then gunicorn forks; slow on a busy 2-core machine


@dataclass
class Served:
    url: str
    secret: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str) -> str:
        """Run `chronoseal ARGS` on the same data; its standard output."""
        done = subprocess.run([sys.executable, "-c", CLI, *args], env=self.env,
                              capture_output=True, text=True, check=True,
                              cwd=self.log.parent)
        return done.stdout


@contextmanager
def serving(tmp_path: Path, queue: str, redis_url: str, **settings: str) -> Iterator[Served]:
    """Start `chronoseal serve --workers 1`; stop it (SIGTERM) when the block ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"),
           "CHRONOSEAL_QUEUE": queue, "REDIS_URL": redis_url,
           "CHRONOSEAL_CONFIG": str(tmp_path / "absent.toml"), **settings}
    env.pop("DATABASE_URL", None)
    log_path = tmp_path / "serve.log"
    served = Served("", "", env, log_path)
    served.secret = served.cli("keys", "create", "--name", "serve").splitlines()[-1]
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "--port", str(port), "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    served.url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                requests.get(f"{served.url}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        yield served
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
