"""Run several child processes as one service and stop them all together.

`chronoseal up` starts the built-in TSA, the API and the worker(s) as children; Ctrl-C or
SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period), and the death of any
child stops the rest, so a broken part is never hidden behind a half-running service.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger(__name__)
STOP_GRACE_S = 10.0  # RQ finishes its current job on SIGTERM; a batch takes well under this
POLL_S = 0.2


@dataclass
class Child:
    """A named child process and the command that starts it."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log.info("starting %s", self.name)
        self.process = subprocess.Popen(list(self.argv), env=self.env)  # noqa: S603

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts children in order, waits, and stops them all on a signal or a child's exit."""

    def __init__(self, children: Sequence[Child], on_stop: Callable[[], None] | None = None):
        self.children = list(children)
        self.on_stop = on_stop
        self._stopping = False

    @property
    def stopping(self) -> bool:
        """True once a signal or a child's exit asked every child to stop."""
        return self._stopping

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %s, stopping", signum)
        self._stopping = True

    def run(self, ready: Callable[[Child], None] | None = None,
            started: Callable[[], None] | None = None) -> int:
        """Start every child (calling `ready(child)` after each, `started()` after the last),
        then supervise; exit code."""
        previous = {s: signal.signal(s, self._signal) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            for child in self.children:
                child.start()
                if ready is not None:
                    ready(child)
            if started is not None:
                started()
            while not self._stopping:
                for child in self.children:
                    if not child.alive():
                        rc = child.process.returncode if child.process else 1
                        log.error("%s exited with %s; stopping the others", child.name, rc)
                        code = rc or 1
                        self._stopping = True
                        break
                time.sleep(POLL_S)
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return code

    def stop(self) -> None:
        """SIGTERM every live child in reverse start order, SIGKILL what outlives the grace."""
        for child in reversed(self.children):
            if child.alive() and child.process is not None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
        if self.on_stop is not None:
            self.on_stop()
