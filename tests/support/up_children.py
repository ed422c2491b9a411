"""Killing `chronoseal up`'s children under load: a client that uploads digests and notes every
refusal, and the supervisor's status file read for each child's pid (tests and bench/restarts.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from service.runtime.supervisor import RUNNING, STATUS_FILE, read_status
from tests.support.running_up import RunningUp

RESTART_WAIT_S = 60.0  # the API and the TSA boot in seconds; generous on a busy 2-core machine
PROGRESS = 5  # uploads accepted after each restart, to show the service works again
# Each kind of process `up` runs: its children by name, and one of the API's gunicorn workers.
KINDS = ("worker-1", "background-worker", "tsa", "api-worker", "api")
FAST_TSA = """[[tsa]]
name = "fast"
url = "builtin"
roots = "builtin"
connect_timeout_s = 1
read_timeout_s = 3
"""


def recovery_env(tmp_path: Path) -> dict[str, str]:
    """Settings under which a killed worker's batch is taken over in seconds: a TSA with short
    timeouts (lease = 1 + 3 + 1 s instead of TSA timeouts plus 30 s) and a sweep every second."""
    (tmp_path / "tsa.toml").write_text(FAST_TSA)
    return {"CHRONOSEAL_TSA_CONFIG": str(tmp_path / "tsa.toml"), "CHRONOSEAL_TSAS": "fast",
            "CHRONOSEAL_BATCH_LEASE_MARGIN_S": "1", "CHRONOSEAL_SWEEP_INTERVAL_S": "1",
            "CHRONOSEAL_STALE_AFTER_S": "5"}


@dataclass
class Client:
    """Uploads digests one after another; keeps the 202s and when each refusal happened."""

    up: RunningUp
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            digest = hashlib.sha256(f"restart-{n}".encode()).hexdigest()
            try:
                answer = requests.post(f"{self.up.api}/v1/stamps", headers=self.up.auth,
                                       json={"sha256": digest, "metadata": {"prompt": "x"}},
                                       timeout=10)
            except requests.RequestException as exc:
                self.refused.append((time.monotonic(), exc.__class__.__name__))
                time.sleep(0.05)
                continue
            if answer.status_code == 202:
                self.accepted.append(answer.json()["id"])
            else:
                self.refused.append((time.monotonic(), f"{answer.status_code} {answer.text}"))

    def wait_for_more(self, count: int, log: Path) -> None:
        target = len(self.accepted) + count
        deadline = time.monotonic() + RESTART_WAIT_S
        while len(self.accepted) < target:
            assert time.monotonic() < deadline, f"uploads stalled\n{log.read_text()[-3000:]}"
            time.sleep(0.05)


def child_pid(data: Path, name: str) -> int:
    state = read_status(data / STATUS_FILE)[name]
    assert state["state"] == RUNNING and state["pid"], state
    return int(state["pid"])  # type: ignore[call-overload]


def wait_restarted(data: Path, name: str, old_pid: int, log: Path) -> int:
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        state = read_status(data / STATUS_FILE).get(name, {})
        if state.get("state") == RUNNING and state.get("pid") not in (None, old_pid):
            return int(state["pid"])  # type: ignore[call-overload]
        assert time.monotonic() < deadline, f"{name} not restarted\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def wait_answers(url: str, log: Path) -> float:
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        try:
            requests.get(url, timeout=2)
            return time.monotonic()
        except requests.RequestException:
            assert time.monotonic() < deadline, f"{url} never answered\n{log.read_text()[-3000:]}"
            time.sleep(0.05)


@dataclass(frozen=True)
class Kill:
    """One `kill -9`: of what, when, when it ran again, when the service accepted again."""

    kind: str
    killed_at: float
    restarted_at: float
    serving_at: float
    refused: int

    def figures(self) -> dict[str, object]:
        return {"kind": self.kind, "restarted_s": round(self.restarted_at - self.killed_at, 2),
                "accepting_again_s": round(self.serving_at - self.killed_at, 2),
                "refused": self.refused}


def kill_and_wait(up: RunningUp, client: Client, kind: str) -> Kill:
    """kill -9 one process of `kind`, wait until it runs again and uploads are accepted again."""
    data = Path(up.env["CHRONOSEAL_DATA_DIR"])
    victim = (children_of(child_pid(data, "api"))[0] if kind == "api-worker"
              else child_pid(data, kind))
    refused_before = len(client.refused)
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    if kind == "api-worker":  # gunicorn's master starts another itself; the API still answers
        restarted = wait_answers(f"{up.api}/healthz", up.log)
    else:
        wait_restarted(data, kind, victim, up.log)
        restarted = time.monotonic()
    if kind == "api":
        wait_answers(f"{up.api}/healthz", up.log)
    client.wait_for_more(1, up.log)
    serving = time.monotonic()
    client.wait_for_more(PROGRESS - 1, up.log)
    return Kill(kind, killed, restarted, serving, len(client.refused) - refused_before)
