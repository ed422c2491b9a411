"""`chronoseal up` end to end over real HTTP: a registered picture is hashed by the worker, and a
re-encoded, mirrored copy then finds it with its TSA time."""

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
from PIL import ImageOps
from rq import Queue

from service.runtime.redis_server import free_port
from tests.e2e.test_up import CLI, REPO, START_TIMEOUT_S, STOP_TIMEOUT_S, _wait
from tests.support.alterations import encode
from tests.support.pictures import picture, picture_png

SEED = 11


def test_a_repost_finds_the_stamped_original(tmp_path: Path) -> None:
    api, tsa = free_port(), free_port()
    queue = f"test-up-search-{uuid.uuid4().hex[:8]}"
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
                               files={"image": ("original.png", picture_png(SEED))},
                               data={"public": "true"})
        assert posted.status_code == 202, posted.text
        repost = encode(ImageOps.mirror(picture(SEED)), "JPEG", quality=60)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            found = requests.post(f"http://127.0.0.1:{api}/v1/search", timeout=30,
                                  files={"image": ("repost.jpg", repost)})  # anonymous
            assert found.status_code == 200, found.text
            matches = found.json()["matches"]
            if matches and matches[0]["tsa_times"]:
                break
            assert time.monotonic() < deadline, (matches, log.read_text()[-3000:])
            time.sleep(0.3)
        assert [m["id"] for m in matches] == [posted.json()["id"]]
        assert set(matches[0]["tsa_times"]) == {"builtin"} and matches[0]["stamped_at"]
        assert "links" not in matches[0]  # anonymous: id, times and digest only
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(STOP_TIMEOUT_S)
        Queue(queue, connection=redis.Redis.from_url("redis://127.0.0.1:6379/0")).delete()
    assert code == 0, log.read_text()[-3000:]
