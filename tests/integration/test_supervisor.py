"""The supervisor behind `chronoseal up`, over small child commands in a process of its own:
a killed child is restarted, a crash loop is given up on (and written to the status file),
and a stop ends every child and grandchild within the grace, twenty times in a row."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.runtime.redis_server import free_port
from service.runtime.supervisor import GAVE_UP, RUNNING, backoff_s, read_status
from tests.support.running_up import REPO

WAIT_S = 20.0  # a start or a restart takes well under a second; allow for a busy machine
GRACE_S = 0.5  # the stubborn children ignore SIGTERM: every stop waits this long, then kills
STOPS = 20


def child(mode: str, *args: object) -> list[str]:
    return [sys.executable, "-m", "tests.support.children", mode, *map(str, args)]


@contextmanager
def supervised(config: dict[str, object], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The supervisor running `config`, started and past its "started" line; stopped after."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tests.support.supervised",
                                    json.dumps(config)], stdout=subprocess.PIPE, stderr=out,
                                   env=env, cwd=REPO)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"started\n", log.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(WAIT_S)


def wait_for(what: str, check, log: Path):  # noqa: ANN001, ANN201 - a predicate, its value
    deadline = time.monotonic() + WAIT_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    return found


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def gone(pid: int) -> bool:
    """True once `pid` no longer runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_backoff_doubles_up_to_its_bound() -> None:
    assert [backoff_s(n, 0.5) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 1, 2, 4, 8, 8]


def test_a_child_killed_with_sigkill_is_restarted_and_the_status_says_so(tmp_path: Path) -> None:
    pidfile, status = tmp_path / "pids", tmp_path / "supervisor.json"
    config = {"children": {"sleeper": child("sleep", pidfile)}, "status": str(status),
              "backoff_first_s": 0.1}
    with supervised(config, tmp_path / "log") as supervisor:
        [first] = wait_for("the child started", lambda: pids(pidfile), tmp_path / "log")
        os.kill(first, signal.SIGKILL)
        second = wait_for("the child came back",
                          lambda: pids(pidfile)[1:] and pids(pidfile)[1], tmp_path / "log")
        state = wait_for("the status names the new pid",
                         lambda: (s := read_status(status).get("sleeper")) and
                         s["pid"] == second and s, tmp_path / "log")
        assert state == {"state": RUNNING, "pid": second, "restarts": 1, "last_exit": -9}
        assert supervisor.poll() is None
    assert supervisor.returncode == 0
    assert not status.exists()  # a stopped supervisor leaves no status to be believed
    assert gone(second)
    assert "sleeper exited with -9; restarting it in 0.1 s" in (tmp_path / "log").read_text()


def test_a_crash_loop_is_given_up_on_while_the_others_keep_running(tmp_path: Path) -> None:
    pidfile, status = tmp_path / "pids", tmp_path / "supervisor.json"
    config = {"children": {"steady": child("sleep", pidfile), "broken": child("crash")},
              "status": str(status), "crash_loop_exits": 3, "backoff_first_s": 0.05}
    with supervised(config, tmp_path / "log") as supervisor:
        broken = wait_for("the broken child was given up on",
                          lambda: (s := read_status(status).get("broken")) and
                          s["state"] == GAVE_UP and s, tmp_path / "log")
        assert broken == {"state": GAVE_UP, "pid": None, "restarts": 2, "last_exit": 3}
        assert read_status(status)["steady"]["state"] == RUNNING
        assert supervisor.poll() is None and not gone(pids(pidfile)[0])
    assert "broken exited with 3, 3 times in 60 s: a crash loop" in (tmp_path / "log").read_text()


def test_a_supervisor_that_gave_up_on_every_child_exits_1(tmp_path: Path) -> None:
    config = {"children": {"broken": child("crash")}, "crash_loop_exits": 2,
              "backoff_first_s": 0.05}
    with supervised(config, tmp_path / "log") as supervisor:
        supervisor.wait(WAIT_S)
    assert supervisor.returncode == 1


def test_twenty_stops_in_a_row_end_within_the_grace_and_leave_no_process(tmp_path: Path) -> None:
    """Each child ignores SIGTERM and left a grandchild holding a port (as gunicorn's deadlocked
    workers did): every stop still ends within the grace, and the port is free at once."""
    for attempt in range(STOPS):
        pidfile, port = tmp_path / f"pids-{attempt}", free_port()
        config = {"children": {"plain": child("sleep", pidfile),
                               "stubborn": child("stubborn", pidfile, port)},
                  "grace_s": GRACE_S}
        log = tmp_path / f"log-{attempt}"
        with supervised(config, log) as supervisor:
            wait_for("the grandchild holds the port", lambda: len(pids(pidfile)) == 3, log)
            assert not port_free(port)
            asked = time.monotonic()
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(WAIT_S)
            took = time.monotonic() - asked
        assert supervisor.returncode == 0, log.read_text()
        assert took < GRACE_S + 2.0, f"stop {attempt} took {took:.2f} s"
        assert port_free(port), f"stop {attempt} left port {port} held"
        assert all(gone(pid) for pid in pids(pidfile)), f"stop {attempt} left a process"


def test_children_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """`kill -9` of the supervisor itself leaves no child running (PR_SET_PDEATHSIG)."""
    pidfile = tmp_path / "pids"
    config = {"children": {"a": child("sleep", pidfile), "b": child("sleep", pidfile)}}
    with supervised(config, tmp_path / "log") as supervisor:
        orphans = wait_for("both children started", lambda: len(pids(pidfile)) == 2 and
                           pids(pidfile), tmp_path / "log")
        supervisor.send_signal(signal.SIGKILL)
    try:
        wait_for("the children ended", lambda: all(gone(p) for p in orphans), tmp_path / "log")
    except AssertionError:
        for pid in orphans:  # failed: leave nothing behind either
            if not gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        raise
