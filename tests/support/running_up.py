"""`chronoseal up` as a test fixture: started on free ports with its own data dir and queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from rq import Queue

from service.runtime.redis_server import free_port
from service.runtime.supervisor import STATUS_FILE, read_status
from service.settings import load_settings
from service.usecases.queueing import worker_queue_names

CLI = "import sys; from service.cli import main; sys.exit(main())"
REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
START_TIMEOUT_S = 90  # first start creates TSA keys and the schema; slow on a busy machine
READY_LINE = "Chronoseal is ready: "  # service/cli/_ready.py ready_line
STOP_TIMEOUT_S = 30  # children get SIGTERM, then SIGKILL after the supervisor's grace


@dataclass
class RunningUp:
    """The running service: its ports, environment, log, and an API key for requests."""

    api_port: int
    tsa_port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]
    auth: dict[str, str]
    exit_code: int | None = None
    ready_line: str = ""  # the one line `up` prints once /readyz says uploads will be stamped
    stop_s: float | None = None  # how long the stop took, SIGTERM to exit
    watched: list[int] = field(default_factory=list)  # up's children and theirs, before the stop
    left_running: list[int] = field(default_factory=list)  # those of them still running after

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def wait_for_line(prefix: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> str:
    """The first line of the log starting with `prefix`, waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no line starting {prefix!r}\n{log.read_text()[-3000:]}")


def wait_until_ok(url: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `url` until it answers 200; fail with the log's tail if the process dies first."""
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


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _runs(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _group_members(groups: list[int]) -> list[int]:
    """Every process in the given process groups (up's children and all they forked)."""
    wanted = {str(g) for g in groups}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat(int(entry.name))[2:3] and \
                _stat(int(entry.name))[2] in wanted:
            found.append(int(entry.name))
    return found


@contextmanager
def running_up(tmp_path: Path, workers: int = 1, log_name: str = "up.log",
               extra_env: dict[str, str] | None = None) -> Iterator[RunningUp]:
    """Start `chronoseal up`, wait for its ready line, create a key, yield; then SIGTERM it and
    record its exit code. The same `tmp_path` again starts on the same data dir."""
    api, tsa = free_port(), free_port()
    queue = f"test-up-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"),
           "CHRONOSEAL_API_PORT": str(api), "CHRONOSEAL_TSA_PORT": str(tsa),
           "REDIS_URL": REDIS_URL, "CHRONOSEAL_QUEUE": queue, "PYTHONPATH": str(REPO),
           **(extra_env or {})}
    env.pop("DATABASE_URL", None)
    log = tmp_path / log_name
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", CLI, "up", "--workers", str(workers)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    run = RunningUp(api, tsa, env, log, process, {})
    try:
        wait_until_ok(f"http://127.0.0.1:{tsa}/certs", START_TIMEOUT_S, process, log)
        wait_until_ok(f"{run.api}/readyz", START_TIMEOUT_S, process, log)
        run.ready_line = wait_for_line(READY_LINE, START_TIMEOUT_S, process, log)
        created = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "up"],
                                 env=env, capture_output=True, text=True, check=True)
        secret = next(w for w in created.stdout.split() if w.startswith("cs_"))
        run.auth = {"Authorization": f"Bearer {secret}"}
        yield run
    finally:
        groups = [int(c["pid"]) for c in read_status(tmp_path / "data" / STATUS_FILE).values()
                  if c.get("pid")]
        members = run.watched = _group_members(groups)
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        run.exit_code = process.wait(STOP_TIMEOUT_S)
        run.stop_s = time.monotonic() - asked
        run.left_running = [pid for pid in members if _runs(pid)]
        client = redis.Redis.from_url(REDIS_URL)
        for name in worker_queue_names(load_settings(env={"CHRONOSEAL_QUEUE": queue})):
            Queue(name, connection=client).delete()


def wait_until_stamped(up: RunningUp, receipt_url: str) -> dict[str, object]:
    """GET `receipt_url` (the receipt's self link, absolute) until it is stamped; its JSON."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while (receipt := requests.get(receipt_url, headers=up.auth, timeout=5).json())["status"] \
            != "stamped":
        assert time.monotonic() < deadline, receipt
        time.sleep(0.2)
    return dict(receipt)
