"""One `chronoseal up` per data dir: the second is refused with the first one's address and pid,
and a lock whose holder was killed lets the next start in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.runtime.instance_lock import LOCK_FILE, acquire
from tests.support.running_up import REPO

HOLD = ("import sys, time; from pathlib import Path; from service.runtime.instance_lock import "
        "acquire; acquire(Path(sys.argv[1]), 'http://127.0.0.1:1'); print('held', flush=True); "
        "time.sleep(3600)")
WAIT_S = 20.0  # a Python start on a busy machine


def test_a_second_holder_is_refused_with_the_first_ones_address(tmp_path: Path) -> None:
    first = acquire(tmp_path, "http://127.0.0.1:8318")
    try:
        with pytest.raises(ConfigError) as refused:
            acquire(tmp_path, "http://127.0.0.1:9999")
        assert str(refused.value) == (f"already running on http://127.0.0.1:8318 "
                                      f"(pid {os.getpid()}, lock {tmp_path / LOCK_FILE})")
    finally:
        first.release()
    acquire(tmp_path, "http://127.0.0.1:9999").release()  # released: the next one gets it


def test_the_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(ConfigError, match=f"pid {holder.pid},"):
            acquire(tmp_path, "http://127.0.0.1:8318")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while True:  # the kernel drops the flock as the process ends
        try:
            acquire(tmp_path, "http://127.0.0.1:8318").release()
            break
        except ConfigError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
