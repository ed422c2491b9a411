"""/metrics of a real `chronoseal up`: gunicorn API workers and RQ workers are separate
processes, and one scrape shows what each recorded (prometheus_client multiprocess mode, in the
directory `up` empties at start and hands to its children)."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.e2e.test_api_metrics import FAMILIES, parse, value
from tests.support.images import png_bytes
from tests.support.running_up import START_TIMEOUT_S, running_up

METRICS_DIR_STALE_FILE = "counter_999999.db"  # what a previous run might have left


def test_up_scrape_shows_upload_and_stamping_metrics_of_every_process(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "data" / "metrics"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / METRICS_DIR_STALE_FILE).write_bytes(b"\0" * 8)
    image = png_bytes(20, 20)
    with running_up(tmp_path) as up:
        assert not (metrics_dir / METRICS_DIR_STALE_FILE).exists()  # emptied at start
        posted = requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30,
                               files={"image": ("a.png", image, "image/png")})
        assert posted.status_code == 202, posted.text
        url = f"{up.api}{posted.json()['links']['self']}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while requests.get(url, headers=up.auth, timeout=5).json()["status"] != "stamped":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        answer = requests.get(f"{up.api}/metrics", timeout=10)
        assert answer.status_code == 200, answer.text[:300]
        names, samples = parse(answer.text)
        writers = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("*.db")}
    # In multiprocess mode a labelled family appears once a process used one of its labels:
    # nothing failed and no webhook was configured here.
    assert set(FAMILIES) - {"chronoseal_tsa_failures", "chronoseal_webhook_deliveries"} <= names
    # Recorded by a gunicorn worker of the API...
    assert value(samples, "chronoseal_http_requests_total", method="POST", route="/v1/stamps",
                 status="202") == 1
    assert value(samples, "chronoseal_upload_bytes_count") == 1
    assert value(samples, "chronoseal_upload_bytes_sum") == len(image)
    # ...by a stamping worker...
    assert value(samples, "chronoseal_batch_receipts_count") == 1
    assert value(samples, "chronoseal_tsa_request_duration_seconds_count", tsa="builtin",
                 outcome="ok") == 1
    # ...and read from the database at scrape time.
    assert value(samples, "chronoseal_receipts", status="stamped") == 1
    assert len(writers) >= 2, writers  # files of at least two processes (pids)
