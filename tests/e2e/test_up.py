"""`chronoseal up` (what `make run` starts): every part comes up and says so in one line, an
upload is stamped through the API, SIGTERM stops every child, and a second start on the same
data dir migrates nothing and logs no migration. Redis: the shared one, with a queue of its own."""

from __future__ import annotations

from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.runtime.supervisor import KILL_WAIT_S, STOP_GRACE_S
from tests.support.images import png_bytes
from tests.support.running_up import (
    REDIS_URL,
    RunningUp,
    running_up,
    wait_until_stamped,
)


def assert_ready_line(up: RunningUp, data: Path) -> None:
    """The ready line names the API, the TSA and its root, the database, Redis, the key command."""
    root = x509.load_pem_x509_certificate((data / "tsa" / "root-cert.pem").read_bytes())
    line = up.ready_line
    assert f"API {up.api} " in line, line
    assert f"TSA builtin (root SHA-256 {root.fingerprint(hashes.SHA256()).hex()})" in line, line
    assert f"database sqlite:///{data / 'chronoseal.db'} " in line, line
    assert f"Redis {REDIS_URL} (found)" in line, line
    assert line.endswith("in this directory: .venv/bin/chronoseal keys create --name NAME"), line


def test_up_serves_stamps_and_stops_cleanly(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        assert_ready_line(up, tmp_path / "data")
        posted = requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30,
                               files={"image": ("a.png", png_bytes(16, 16), "image/png")})
        assert posted.status_code == 202, posted.text
        url = f"{up.api}{posted.json()['links']['self']}"
        receipt = wait_until_stamped(up, url)
        # config/tsa.toml's url = "builtin" follows CHRONOSEAL_TSA_PORT, so the name stays.
        assert [t["tsa"] for t in receipt["tokens"]] == ["builtin"]
    assert up.exit_code == 0, up.log.read_text()[-3000:]
    # Within the supervisor's grace, with no child or grandchild (gunicorn worker) left over.
    assert up.stop_s is not None and up.stop_s < STOP_GRACE_S + KILL_WAIT_S + 5, up.stop_s
    assert len(up.watched) >= 6 and up.left_running == [], (up.watched, up.left_running)
    for port in (up.api_port, up.tsa_port):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            raise AssertionError(f"something still answers on port {port}")
        except requests.ConnectionError:
            pass


def test_up_second_start_logs_no_migration(tmp_path: Path) -> None:
    with running_up(tmp_path, log_name="first.log") as first:
        pass
    assert "Running upgrade" in first.log.read_text()  # the first start migrates, and says so
    with running_up(tmp_path, log_name="second.log") as second:
        assert_ready_line(second, tmp_path / "data")
    log = second.log.read_text()
    assert second.exit_code == 0, log[-3000:]
    assert "alembic" not in log, [line for line in log.splitlines() if "alembic" in line]
