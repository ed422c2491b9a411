"""Run several child processes as one service: restart the ones that die, stop them all together.

`chronoseal up` starts Redis (when it started one), the built-in TSA, the API and the workers as
children. A child that exits on its own is restarted after a back-off that doubles with each
recent exit; one that exits CRASH_LOOP_EXITS times within CRASH_LOOP_WINDOW_S is in a crash
loop, and the supervisor gives up on it (logged, and written to the status file that /healthz
reads) while the others keep running. Ctrl-C or SIGTERM stops every child: SIGTERM to its
process group, then SIGKILL to the whole group after its grace, so no grandchild (a gunicorn
worker, say) outlives its parent holding a port.

Each child runs in a session of its own, so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children in reverse start order. The kernel sends a child SIGTERM when
the supervisor itself dies (PR_SET_PDEATHSIG), so even `kill -9` of `up` leaves no service
behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)
STOP_GRACE_S = 10.0  # RQ finishes its current job on SIGTERM; a batch takes well under this
POLL_S = 0.2  # how soon an exit is noticed; a restart costs seconds anyway
BACKOFF_FIRST_S = 0.5  # a killed child comes back at once; a failing one is not hammered
BACKOFF_MAX_S = 8.0  # the longest wait between two starts of a child that keeps failing
# Five exits within a minute is a child that cannot run (bad config, a port taken, a broken
# dependency): restarting it more only fills the log. Single kills, OOMs and the odd crash
# are far rarer than that and are always restarted.
CRASH_LOOP_EXITS = 5
CRASH_LOOP_WINDOW_S = 60.0
# In the data dir, where /healthz reads the crash loops from. A file, not Redis: the Redis `up`
# started is one of the children that may be crash-looping, and every process `up` starts
# shares its data dir by construction (a lone `serve` elsewhere finds no file and reports none).
STATUS_FILE = "supervisor.json"
RUNNING, RESTARTING, GAVE_UP, EXITED = "running", "restarting", "gave up", "exited"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
KILL_WAIT_S = 2.0  # SIGKILL ends a process in milliseconds; past this something is stuck in D


def die_with_parent() -> None:
    """preexec_fn: the kernel sends this child SIGTERM when its parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A named child process, the command that starts it and what happened to it so far.

    `restart` False: an exit on its own is the child's end (a burst worker), not a failure."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    grace_s: float = STOP_GRACE_S
    restart: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    state: str = field(default=RUNNING, init=False)
    restarts: int = field(default=0, init=False)
    last_exit: int | None = field(default=None, init=False)
    exits: deque[float] = field(default_factory=deque, init=False)  # monotonic, recent only
    start_at: float | None = field(default=None, init=False)  # when a restart is due

    def start(self) -> None:
        log.info("starting %s", self.name)
        self.process = subprocess.Popen(list(self.argv), env=self.env,  # noqa: S603
                                        start_new_session=True, preexec_fn=die_with_parent)
        self.state, self.start_at = RUNNING, None

    def adopt(self, process: subprocess.Popen[bytes]) -> Child:
        """Supervise a process started elsewhere (in a session of its own) from now on."""
        self.process = process
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the child's process group (itself and whatever it forked)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self.process.pid, signum)

    def kill_group(self) -> None:
        """SIGKILL the child's group and wait (bounded) until no member runs any more: the
        kernel frees a dead process's ports only once it has really exited."""
        if self.process is None:
            return
        self.signal_group(signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        while _group_runs(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def describe(self) -> dict[str, object]:
        return {"state": self.state, "pid": self.process.pid if self.alive() and self.process
                else None, "restarts": self.restarts, "last_exit": self.last_exit}


def backoff_s(recent_exits: int, first_s: float = BACKOFF_FIRST_S) -> float:
    """The wait before the next start after the `recent_exits`-th exit in the window."""
    return float(min(BACKOFF_MAX_S, first_s * 2 ** max(0, recent_exits - 1)))


class Supervisor:
    """Starts children in order, restarts those that exit, stops them all on a signal."""

    def __init__(self, children: Sequence[Child], on_stop: Callable[[], None] | None = None,
                 status_path: Path | None = None, *, crash_loop_exits: int = CRASH_LOOP_EXITS,
                 crash_loop_window_s: float = CRASH_LOOP_WINDOW_S,
                 backoff_first_s: float = BACKOFF_FIRST_S):
        self.children = list(children)
        self.on_stop = on_stop
        self.status_path = status_path
        self.crash_loop_exits = crash_loop_exits
        self.crash_loop_window_s = crash_loop_window_s
        self.backoff_first_s = backoff_first_s
        self._stopping = False

    @property
    def stopping(self) -> bool:
        """True once a signal (or nothing left to run) asked every child to stop."""
        return self._stopping

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %s, stopping", signum)
        self._stopping = True

    def run(self, ready: Callable[[Child], None] | None = None,
            started: Callable[[], None] | None = None) -> int:
        """Start every child (calling `ready(child)` after each, `started()` after the last),
        then supervise until a signal; exit code (1 when every child was given up on)."""
        previous = {s: signal.signal(s, self._signal) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            for child in self.children:
                if self._stopping:
                    break
                if not child.alive():
                    child.start()
                self.write_status()
                if ready is not None:
                    ready(child)
            if started is not None and not self._stopping:
                started()
            while not self._stopping:
                self.tend(time.monotonic())
                if all(c.state in (GAVE_UP, EXITED) for c in self.children):
                    gave_up = [c.name for c in self.children if c.state == GAVE_UP]
                    code = 1 if gave_up else max((c.last_exit or 0 for c in self.children),
                                                 default=0)
                    if gave_up:
                        log.error("gave up on every child (%s); stopping", ", ".join(gave_up))
                    break
                time.sleep(POLL_S)
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return code

    def tend(self, now: float) -> None:
        """One pass: notice exits (scheduling a restart or giving up), start what is due."""
        changed = False
        for child in self.children:
            if child.state == RUNNING and child.process is not None and not child.alive():
                self._exited(child, now)
                changed = True
            elif child.state == RESTARTING and child.start_at is not None \
                    and now >= child.start_at and not self._stopping:
                child.restarts += 1
                child.start()
                changed = True
        if changed:
            self.write_status()

    def _exited(self, child: Child, now: float) -> None:
        rc = child.process.returncode if child.process is not None else None
        child.last_exit = rc
        child.kill_group()  # what it forked dies with it (no port kept held)
        if not child.restart:
            child.state = EXITED
            log.info("%s exited with %s", child.name, rc)
            return
        child.exits.append(now)
        while child.exits and child.exits[0] < now - self.crash_loop_window_s:
            child.exits.popleft()
        recent = len(child.exits)
        if recent >= self.crash_loop_exits:
            child.state = GAVE_UP
            log.error("%s exited with %s, %d times in %g s: a crash loop; not restarting it",
                      child.name, rc, recent, self.crash_loop_window_s,
                      extra={"child": child.name, "exit_code": rc})
            return
        wait = backoff_s(recent, self.backoff_first_s)
        child.state, child.start_at = RESTARTING, now + wait
        log.warning("%s exited with %s; restarting it in %g s (exit %d of %d allowed in %g s)",
                    child.name, rc, wait, recent, self.crash_loop_exits - 1,
                    self.crash_loop_window_s, extra={"child": child.name, "exit_code": rc})

    def write_status(self) -> None:
        """The children's states into the status file (replaced atomically), when there is one."""
        if self.status_path is None:
            return
        body = {"pid": os.getpid(),
                "children": {c.name: c.describe() for c in self.children}}
        temporary = self.status_path.with_name(f".{self.status_path.name}.{os.getpid()}")
        try:
            temporary.write_text(json.dumps(body))
            temporary.replace(self.status_path)
        except OSError as exc:  # a full disk must not stop supervision
            log.warning("cannot write %s: %s", self.status_path, exc)

    def stop(self) -> None:
        """SIGTERM every live child's group in reverse start order; SIGKILL each group when its
        grace is over (or at once when its leader has gone), so nothing outlives the stop."""
        self._stopping = True
        started = time.monotonic()
        for child in reversed(self.children):
            if child.alive():
                child.signal_group(signal.SIGTERM)
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.0, started + child.grace_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s; killing it", child.name, child.grace_s)
            child.kill_group()  # the leader, or stragglers it left behind
            child.process.wait()
            log.info("%s stopped (%.1f s)", child.name, time.monotonic() - started)
        if self.status_path is not None:
            self.status_path.unlink(missing_ok=True)
        if self.on_stop is not None:
            self.on_stop()


def _group_runs(pgid: int) -> bool:
    """True while a process of group `pgid` runs (zombies, exited and waiting to be reaped by
    whoever adopted them, do not count). Reads /proc; elsewhere asks kill(0)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we looked
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def read_status(path: Path) -> dict[str, dict[str, object]]:
    """The children's states a live supervisor wrote to `path`; {} without a live one."""
    try:
        body = json.loads(path.read_text())
        pid = int(body["pid"])
        os.kill(pid, 0)  # a status left by a supervisor that was killed says nothing now
        children = body["children"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return children if isinstance(children, dict) else {}
