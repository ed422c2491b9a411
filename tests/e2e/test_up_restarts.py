"""`chronoseal up` survives `kill -9` of each kind of child while a client uploads: the stamping
worker, the background worker, the built-in TSA, one of the API's gunicorn workers and the API
itself. Each comes back (the supervisor's status file shows its new pid), every 202 ends stamped
exactly once, and uploads are refused only while the API itself restarts. A second `up` on the
same data dir says where the first runs and exits 1.

The TSA is declared with short timeouts, so a batch whose worker was killed inside it is taken
over seconds later instead of after the default lease (TSA timeouts plus 30 s)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, select

from service.runtime.supervisor import RUNNING, STATUS_FILE, read_status
from service.storage.tables import batches, receipts
from tests.support.running_up import CLI, RunningUp, running_up

RESTART_WAIT_S = 60.0  # the API and the TSA boot in seconds; generous on a busy 2-core machine
STAMP_WAIT_S = 60.0  # a taken-over batch waits for its 5 s lease, retried TSAs for 2 s
PROGRESS = 5  # uploads accepted after each restart, to show the service works again
FAST_TSA = """[[tsa]]
name = "fast"
url = "builtin"
roots = "builtin"
connect_timeout_s = 1
read_timeout_s = 3
"""
RECOVERY_ENV = {
    "CHRONOSEAL_TSAS": "fast",
    "CHRONOSEAL_BATCH_LEASE_MARGIN_S": "1",  # lease = 1 + 3 + 1 s
    "CHRONOSEAL_SWEEP_INTERVAL_S": "1",
    "CHRONOSEAL_STALE_AFTER_S": "5",
}


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


def assert_stamped_exactly_once(data: Path, accepted: list[str], log: Path) -> None:
    engine = create_engine(f"sqlite:///{data / 'chronoseal.db'}")
    try:
        deadline = time.monotonic() + STAMP_WAIT_S
        while True:
            with engine.connect() as conn:
                rows = {r.id: r for r in conn.execute(select(receipts))}
                sizes = {b.id: b.tree_size for b in conn.execute(select(batches))}
            pending = [i for i in accepted if rows[i].status != "stamped"]
            if not pending:
                break
            assert time.monotonic() < deadline, \
                f"{len(pending)} never stamped\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        members: dict[str, list[int]] = {}
        for row in rows.values():
            if row.batch_id is not None:
                members.setdefault(row.batch_id, []).append(row.leaf_index)
        for batch_id in {rows[i].batch_id for i in accepted}:
            # A receipt stamped twice would leave its first batch short of its tree size.
            assert sorted(members[batch_id]) == list(range(sizes[batch_id])), batch_id
    finally:
        engine.dispose()


def test_every_kind_of_child_killed_during_uploads_comes_back(tmp_path: Path) -> None:
    (tmp_path / "tsa.toml").write_text(FAST_TSA)
    env = {**RECOVERY_ENV, "CHRONOSEAL_TSA_CONFIG": str(tmp_path / "tsa.toml")}
    with running_up(tmp_path, extra_env=env) as up:
        data = tmp_path / "data"
        second = subprocess.run([sys.executable, "-c", CLI, "up"], env=up.env, timeout=60,
                                capture_output=True, text=True)
        assert second.returncode == 1, second.stderr
        assert f"already running on {up.api} (pid {up.process.pid}, " in second.stderr
        client = Client(up)
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        api_windows: list[tuple[float, float]] = []
        try:
            client.wait_for_more(PROGRESS, up.log)
            for name in ("worker-1", "background-worker", "tsa", "api-worker", "api"):
                victim = (children_of(child_pid(data, "api"))[0] if name == "api-worker"
                          else child_pid(data, name))
                killed = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                if name == "api-worker":  # gunicorn's master starts another itself
                    api_windows.append((killed, wait_answers(f"{up.api}/healthz", up.log)))
                else:
                    wait_restarted(data, name, victim, up.log)
                if name == "api":
                    api_windows.append((killed, wait_answers(f"{up.api}/healthz", up.log)))
                client.wait_for_more(PROGRESS, up.log)
        finally:
            client.stop.set()
            thread.join(30)
        assert_stamped_exactly_once(data, client.accepted, up.log)
        outside = [(at, why) for at, why in client.refused
                   if not any(start <= at <= end + 1.0 for start, end in api_windows)]
        assert not outside, outside
        log = up.log.read_text()
        for name in ("worker-1", "background-worker", "tsa", "api"):
            assert f"{name} exited with -9; restarting it" in log, name
    assert up.exit_code == 0, up.log.read_text()[-3000:]
    assert up.left_running == [], up.left_running
